"""The database side of Strata: tables, the async engine, and batch reads and writes."""

from models.database import Database, create_engine
from models.errors import CatalogueError, Forbidden, InvalidInput, NotFound
from models.records import (
    NO_REVIEWS,
    AuthorRecord,
    BookRecord,
    ReviewRecord,
    ReviewStats,
    UserRecord,
)
from models.tables import ApiToken, Author, Book, Review, User

__all__ = [
    "NO_REVIEWS",
    "ApiToken",
    "Author",
    "AuthorRecord",
    "Book",
    "BookRecord",
    "CatalogueError",
    "Database",
    "Forbidden",
    "InvalidInput",
    "NotFound",
    "Review",
    "ReviewRecord",
    "ReviewStats",
    "User",
    "UserRecord",
    "create_engine",
]
