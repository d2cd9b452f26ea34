"""The GraphQL API: schema, types, resolvers, loaders, tags and ids of the catalogue."""
