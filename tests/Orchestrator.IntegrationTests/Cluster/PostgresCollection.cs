using Orchestrator.TestKit;

namespace Orchestrator.IntegrationTests.Cluster;

[CollectionDefinition(PostgresServer.CollectionName)]
public sealed class PostgresCollection : PostgresCollectionDefinition;
