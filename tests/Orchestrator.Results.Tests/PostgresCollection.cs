using Orchestrator.TestKit;

namespace Orchestrator.Results.Tests;

/// <summary>One throwaway PostgreSQL server shared by every class in the "postgres" collection.</summary>
[CollectionDefinition(PostgresServer.CollectionName)]
public sealed class PostgresCollection : PostgresCollectionDefinition;
