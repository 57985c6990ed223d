namespace Orchestrator.Results;

/// <summary>
/// Who may change the schema's own bookkeeping on PostgreSQL. The migrator (the role that owns the tables) applies the
/// schema; the runtime role the silos and the CLI use may read and write rows of the results and Orleans tables, but must
/// not change <c>orleansquery</c> (the SQL the Orleans providers run: a row there is code) or <c>schema_migrations</c>.
/// Deployments grant the runtime role DML on every table the owner creates (default privileges), so each migration ends
/// by taking the write rights on these two tables back from every role but their owner.
/// </summary>
internal static class SchemaPrivileges
{
    /// <summary>The tables only the owner may write.</summary>
    public static readonly IReadOnlyList<string> OwnerOnlyTables = ["orleansquery", "schema_migrations"];

    /// <summary>
    /// Revokes INSERT, UPDATE, DELETE and TRUNCATE on <see cref="OwnerOnlyTables"/> (those that exist in the current schema)
    /// from PUBLIC and from every role that holds one of them, except the owner. Idempotent.
    /// </summary>
    public const string PostgresRevokeWrites = """
        DO $$
        DECLARE
          t record;
          g oid;
        BEGIN
          FOR t IN SELECT c.oid, c.relowner, format('%I.%I', n.nspname, c.relname) AS name
                   FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                   WHERE n.nspname = current_schema() AND c.relname IN ('orleansquery', 'schema_migrations') LOOP
            FOR g IN SELECT DISTINCT a.grantee FROM pg_class c, aclexplode(c.relacl) a
                     WHERE c.oid = t.oid AND a.grantee <> t.relowner
                       AND a.privilege_type IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE') LOOP
              EXECUTE format('REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON %s FROM %s', t.name,
                             CASE WHEN g = 0 THEN 'PUBLIC' ELSE g::regrole::text END);
            END LOOP;
          END LOOP;
        END $$;
        """;
}
