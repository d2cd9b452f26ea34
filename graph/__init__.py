"""The GraphQL and HTTP side of Strata: schema, resolvers, dataloaders, app and CLI."""
