namespace Orchestrator.Clustering;

/// <summary>
/// The PostgreSQL schema that Orleans' ADO.NET clustering provider (Microsoft.Orleans.Clustering.AdoNet 10.4.2)
/// needs, which its NuGet package does not ship. The contract is the <c>OrleansQuery</c> table: the provider looks
/// up each operation's SQL by query key, binds the parameters by name (a parameter it does not send must not appear: Npgsql would leave it as text) (<c>@DeploymentId</c>, <c>@Address</c>,
/// <c>@Port</c>, <c>@Generation</c>, <c>@Version</c>, …) and reads result columns by name. The SQL below is our
/// own: plain statements with data-modifying CTEs instead of stored functions, so that a membership write and its
/// table-version bump happen together or not at all (the version row is the optimistic-concurrency token).
/// Only DML is needed at run time. Applied by <c>orchestrator db migrate</c> as the results schema's migration 3, so one
/// versioned sequence creates everything a cluster's database holds.
/// </summary>
public static class OrleansClusteringSchema
{
    public const string PostgresSql = """
        CREATE TABLE IF NOT EXISTS orleansquery (
            querykey  varchar(64)   NOT NULL PRIMARY KEY,
            querytext varchar(8000) NOT NULL
        );

        CREATE TABLE IF NOT EXISTS orleansmembershipversiontable (
            deploymentid varchar(150)   NOT NULL PRIMARY KEY,
            timestamp    timestamptz(3) NOT NULL DEFAULT now(),
            version      integer        NOT NULL DEFAULT 0
        );

        CREATE TABLE IF NOT EXISTS orleansmembershiptable (
            deploymentid varchar(150)   NOT NULL REFERENCES orleansmembershipversiontable (deploymentid),
            address      varchar(45)    NOT NULL,
            port         integer        NOT NULL,
            generation   integer        NOT NULL,
            siloname     varchar(150)   NOT NULL,
            hostname     varchar(150)   NOT NULL,
            status       integer        NOT NULL,
            proxyport    integer        NULL,
            suspecttimes varchar(8000)  NULL,
            starttime    timestamptz(3) NOT NULL,
            iamalivetime timestamptz(3) NOT NULL,
            PRIMARY KEY (deploymentid, address, port, generation)
        );

        INSERT INTO orleansquery (querykey, querytext) VALUES
        ('UpdateIAmAlivetimeKey', '
            UPDATE orleansmembershiptable SET iamalivetime = @IAmAliveTime
            WHERE deploymentid = @DeploymentId AND address = @Address AND port = @Port AND generation = @Generation;'),

        ('InsertMembershipVersionKey', '
            WITH ins AS (
                INSERT INTO orleansmembershipversiontable (deploymentid) VALUES (@DeploymentId)
                ON CONFLICT (deploymentid) DO NOTHING RETURNING 1)
            SELECT count(*)::integer FROM ins;'),

        ('InsertMembershipKey', '
            WITH bumped AS (
                UPDATE orleansmembershipversiontable SET version = version + 1, timestamp = now()
                WHERE deploymentid = @DeploymentId AND version = @Version
                  AND NOT EXISTS (SELECT 1 FROM orleansmembershiptable m
                                  WHERE m.deploymentid = @DeploymentId AND m.address = @Address
                                    AND m.port = @Port AND m.generation = @Generation)
                RETURNING 1),
            ins AS (
                INSERT INTO orleansmembershiptable (deploymentid, address, port, generation, siloname, hostname, status,
                                                    proxyport, starttime, iamalivetime)
                SELECT @DeploymentId, @Address, @Port, @Generation, @SiloName, @HostName, @Status,
                       @ProxyPort, @StartTime, @IAmAliveTime
                WHERE EXISTS (SELECT 1 FROM bumped)
                RETURNING 1)
            SELECT count(*)::integer FROM ins;'),

        ('UpdateMembershipKey', '
            WITH bumped AS (
                UPDATE orleansmembershipversiontable SET version = version + 1, timestamp = now()
                WHERE deploymentid = @DeploymentId AND version = @Version
                  AND EXISTS (SELECT 1 FROM orleansmembershiptable m
                              WHERE m.deploymentid = @DeploymentId AND m.address = @Address
                                AND m.port = @Port AND m.generation = @Generation)
                RETURNING 1),
            upd AS (
                UPDATE orleansmembershiptable SET status = @Status, suspecttimes = @SuspectTimes,
                       iamalivetime = @IAmAliveTime
                WHERE deploymentid = @DeploymentId AND address = @Address AND port = @Port AND generation = @Generation
                  AND EXISTS (SELECT 1 FROM bumped)
                RETURNING 1)
            SELECT count(*)::integer FROM upd;'),

        ('MembershipReadRowKey', '
            SELECT v.deploymentid, m.address, m.port, m.generation, m.siloname, m.hostname, m.status, m.proxyport,
                   m.suspecttimes, m.starttime, m.iamalivetime, v.version
            FROM orleansmembershipversiontable v
            LEFT JOIN orleansmembershiptable m ON m.deploymentid = v.deploymentid
                 AND m.address = @Address AND m.port = @Port AND m.generation = @Generation
            WHERE v.deploymentid = @DeploymentId;'),

        ('MembershipReadAllKey', '
            SELECT v.deploymentid, m.address, m.port, m.generation, m.siloname, m.hostname, m.status, m.proxyport,
                   m.suspecttimes, m.starttime, m.iamalivetime, v.version
            FROM orleansmembershipversiontable v
            LEFT JOIN orleansmembershiptable m ON m.deploymentid = v.deploymentid
            WHERE v.deploymentid = @DeploymentId;'),

        ('DeleteMembershipTableEntriesKey', '
            DELETE FROM orleansmembershiptable WHERE deploymentid = @DeploymentId;
            DELETE FROM orleansmembershipversiontable WHERE deploymentid = @DeploymentId;'),

        ('GatewaysQueryKey', '
            SELECT address, proxyport, generation FROM orleansmembershiptable
            WHERE deploymentid = @DeploymentId AND status = @Status AND proxyport > 0;'),

        ('CleanupDefunctSiloEntriesKey', '
            DELETE FROM orleansmembershiptable
            WHERE deploymentid = @DeploymentId AND status = 6
              AND iamalivetime < @IAmAliveTime AND starttime < @IAmAliveTime
              AND coalesce(suspecttimes, '''') = '''';'),

        ('CleanupDefunctSiloEntryKey', '
            DELETE FROM orleansmembershiptable
            WHERE deploymentid = @DeploymentId AND status = 6
              AND address = @Address AND port = @Port AND generation = @Generation
              AND iamalivetime = @IAmAliveTime AND starttime = @StartTime
              AND coalesce(suspecttimes, '''') = coalesce(CAST(@SuspectTimes AS varchar), '''');')
        ON CONFLICT (querykey) DO UPDATE SET querytext = excluded.querytext;
        """;
}
