// A small client of the Strata API: Apollo Client with automatic persisted queries sent
// over GET (so the browser's HTTP cache and Strata's ETag/304 apply), a book list, a book
// with its reviews, and a review added as a signed-in reader.
//
// URL parameters: ?api=<GraphQL endpoint> (default http://127.0.0.1:8000/graphql, or
// VITE_STRATA_API at build time) and ?token=<bearer token> (or paste one in the page).
import { ApolloClient, ApolloLink, HttpLink, InMemoryCache, gql } from "@apollo/client";
import { PersistedQueryLink } from "@apollo/client/link/persisted-queries";

const params = new URLSearchParams(window.location.search);
const API = params.get("api") || import.meta.env.VITE_STRATA_API || "http://127.0.0.1:8000/graphql";
let token = params.get("token") || "";
let selectedBookId = null;

const BOOKS = gql`
  query Books {
    books(first: 10) {
      edges { node { id title reviewCount averageRating author { id name } } }
    }
  }
`;
const BOOK = gql`
  query Book($id: ID!) {
    book(id: $id) {
      id title genre publishedYear reviewCount averageRating
      author { id name }
      reviews(first: 100) {
        edges { node { id rating body reviewer { id name } } }
      }
    }
  }
`;
const ME = gql`
  query Me { me { id name } }
`;
const ADD_REVIEW = gql`
  mutation AddReview($input: ReviewInput!) {
    addReview(input: $input) { id rating body book { id reviewCount averageRating } }
  }
`;

// SHA-256 of the query text, hex, with the Web Crypto API (localhost is a secure context).
async function sha256(text) {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

function makeClient() {
  const headers = token ? { authorization: `Bearer ${token}` } : {};
  return new ApolloClient({
    link: ApolloLink.from([
      new PersistedQueryLink({ sha256, useGETForHashedQueries: true }),
      // `no-cache`: the browser may keep GET answers but asks the server before each
      // reuse (If-None-Match, answered 304 when nothing changed). Strata's default
      // Cache-Control (`no-cache`) asks the same; saying it here keeps this page right
      // under STRATA_HTTP_CACHE=max-age too, where a browser would reuse an answer
      // without asking and could show a review list from before the reader's own write.
      new HttpLink({ uri: API, headers, fetchOptions: { cache: "no-cache" } }),
    ]),
    cache: new InMemoryCache(),
    // Every view asks the server: a repeated one costs a 304 or a response-cache hit
    // there, and nothing a mutation changed is ever shown from a cache.
    defaultOptions: {
      query: { fetchPolicy: "network-only" },
      watchQuery: { fetchPolicy: "network-only" },
    },
  });
}

let client = makeClient();
const $ = (id) => document.getElementById(id);

function showError(error) {
  $("error").hidden = !error;
  $("error").textContent = error ? String(error.message || error) : "";
}

function li(text, attributes = {}) {
  const item = document.createElement("li");
  item.textContent = text;
  for (const [name, value] of Object.entries(attributes)) item.setAttribute(name, value);
  return item;
}

async function renderBooks() {
  const { data } = await client.query({ query: BOOKS });
  const list = $("books");
  list.replaceChildren(
    ...data.books.edges.map(({ node }) => {
      const item = li("", { "data-book-id": node.id });
      const link = document.createElement("a");
      link.href = `#/book/${node.id}`;
      link.textContent = node.title;
      const count = document.createElement("span");
      count.className = "count";
      count.dataset.testid = "book-review-count";
      count.textContent = ` — ${node.author.name}, ${node.reviewCount} reviews`;
      item.append(link, count);
      return item;
    }),
  );
}

async function renderBook() {
  if (selectedBookId === null) {
    $("book").hidden = true;
    return;
  }
  const { data } = await client.query({ query: BOOK, variables: { id: selectedBookId } });
  const book = data.book;
  $("book").hidden = false;
  if (!book) {
    $("book-title").textContent = "No such book";
    $("reviews").replaceChildren();
    return;
  }
  $("book").dataset.bookId = book.id;
  $("book-title").textContent = book.title;
  const average = book.averageRating === null ? "no rating" : `${book.averageRating.toFixed(1)} ★`;
  $("book-meta").textContent = `${book.author.name} · ${book.genre} · ${book.publishedYear} · ${average}`;
  $("review-count").textContent = String(book.reviewCount);
  $("reviews").replaceChildren(
    ...book.reviews.edges.map(({ node }) =>
      li(`${"★".repeat(node.rating)} ${node.body} — ${node.reviewer.name}`, {
        "data-review-id": node.id,
      }),
    ),
  );
}

async function renderViewer() {
  let name = null;
  if (token) {
    const { data } = await client.query({ query: ME });
    name = data.me?.name ?? null;
  }
  $("viewer").textContent = name ? `signed in as ${name}` : "anonymous";
  $("add-review").hidden = !name;
  $("sign-in-hint").hidden = Boolean(name);
}

async function render() {
  try {
    showError(null);
    await Promise.all([renderBooks(), renderBook(), renderViewer()]);
    document.body.dataset.ready = "true";
  } catch (error) {
    showError(error);
  }
}

function route() {
  const match = window.location.hash.match(/^#\/book\/([^/]+)$/);
  selectedBookId = match ? decodeURIComponent(match[1]) : null;
  document.body.dataset.ready = "false";
  render();
}

$("sign-in").addEventListener("submit", (event) => {
  event.preventDefault();
  token = $("token").value.trim();
  client = makeClient();
  route();
});

$("add-review").addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = { bookId: selectedBookId, rating: Number($("rating").value), body: $("body").value };
  $("submit-review").disabled = true;
  try {
    showError(null);
    await client.mutate({ mutation: ADD_REVIEW, variables: { input } });
    $("body").value = "";
    document.body.dataset.ready = "false";
    await render(); // both views from the server: the mutation invalidated their entries
  } catch (error) {
    showError(error);
  } finally {
    $("submit-review").disabled = false;
  }
});

$("api-url").textContent = API;
$("token").value = token;
window.addEventListener("hashchange", route);
route();
