using System.CommandLine;
using System.Text.Json;
using Orchestrator.Abstractions;
using Orchestrator.Core.Specs;
using Orchestrator.Data;
using Orchestrator.Hosting;
using Orchestrator.Results;
using Orchestrator.Worker;
using Spectre.Console;

namespace Orchestrator.Cli.Commands;

/// <summary>The sweep lifecycle: submit, status, cancel, resume, rerun-failed, extend, and db migrate.</summary>
internal static class SweepCommands
{
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    public static void Register(RootCommand root, Option<string> dataDir, Option<int> slots, Option<bool> verbose, Option<long> maxCells)
    {
        var shared = new SessionOptions(root, dataDir, verbose);
        var cluster = shared.Cluster;
        var watch = new Option<bool>("--watch") { Description = "Follow progress until the sweep is complete" };
        var format = new Option<string>("--format") { Description = "text or json", DefaultValueFactory = _ => "text" };
        format.AcceptOnlyFromAmong("text", "json");

        Command Make(string name, string description, params Symbol[] symbols) => shared.Add(name, description, symbols);

        Task<Session> Open(ParseResult pr, bool train, CancellationToken ct, bool create = false) => shared.OpenAsync(pr, train, pr.GetValue(slots), ct, create);

        var submitSpec = new Argument<string>("SPEC") { Description = "Sweep spec file (YAML)" };
        Make("submit", "Validate a spec and queue its cells; prints the sweep id. In embedded mode it also runs them.", submitSpec, watch, slots, maxCells)
            .SetAction((pr, ct) => Guard(async () =>
            {
                if (!CliApp.TryPlan(pr.GetValue(submitSpec)!, pr.GetValue(maxCells), out var plan))
                {
                    return CliApp.ExitInvalidInput;
                }

                var started = DateTimeOffset.UtcNow;
                await using var session = await Open(pr, train: true, ct, create: true);
                if (plan.Selection.Count > 0 && !session.Embedded && !pr.GetValue(watch))
                {
                    // The cluster makes each choice and queues its grid once the selection cells have finished: nothing waits here
                    // (with --watch the same submission, then the progress until the chosen grids are done).
                    var queued = await SweepSubmitter.SubmitSelectingAsync(session.Grains, plan, pr.GetValue(maxCells));
                    Console.WriteLine(queued.SweepId);
                    Console.Error.WriteLine($"{queued.Total} cells: {queued.AlreadyDone} already done, {queued.Queued} queued; each selecting " +
                        "method's grid is queued by the cluster at its chosen values once its selection cells have finished " +
                        $"(status {queued.SweepId} shows the choices)");
                    return 0;
                }

                var submission = await CliApp.SubmitAsync(session.Services, plan, pr.GetValue(maxCells), ct);
                var result = submission.Result;
                Console.WriteLine(result.SweepId);
                Console.Error.WriteLine($"{result.Total} cells: {result.AlreadyDone} already done, {result.Queued} queued");
                return session.Embedded || pr.GetValue(watch)
                    ? await CliApp.FinishAsync(session.Services, plan.Spec.Name, plan.Spec.Metrics, result.SweepId, started, ct, submission.DoneBefore)
                    : 0;
            }));

        var extendSpec = new Argument<string>("SPEC") { Description = "The sweep's spec with more seeds, subsamples, sizes or methods" };
        Make("extend", "Add cells to the existing sweep of the same name; existing cells are kept and not recomputed.", extendSpec, watch, slots, maxCells)
            .SetAction((pr, ct) => Guard(async () =>
            {
                if (!CliApp.TryPlan(pr.GetValue(extendSpec)!, pr.GetValue(maxCells), out var plan))
                {
                    return CliApp.ExitInvalidInput;
                }

                var started = DateTimeOffset.UtcNow;
                await using var session = await Open(pr, train: true, ct);
                var existing = await session.Store.FindSweepAsync(plan.Spec.Name, ct);
                if (existing is null)
                {
                    throw new ArgumentException($"no sweep named '{plan.Spec.Name}' to extend; use submit");
                }

                var incompatible = SpecCompatibility.Explain(
                    SpecParser.Parse(existing.SpecYaml, OrchestratorVocabulary.Default, existing.SweepId), plan.Spec);
                if (incompatible is not null)
                {
                    throw new ArgumentException($"cannot extend sweep {existing.SweepId}: {incompatible}");
                }

                // With selection: a choice already made stays (its grid grows with the spec); a method still choosing gets it when its cells finish.
                var result = plan.Selection.Count > 0
                    ? await SweepSubmitter.SubmitSelectingAsync(session.Grains, plan, pr.GetValue(maxCells), extend: existing.SweepId)
                    : await SweepSubmitter.ExtendAsync(session.Grains, plan, existing.SweepId);
                Console.WriteLine(result.SweepId);
                Console.Error.WriteLine($"{result.Total} cells now: {result.AlreadyDone} already done, {result.Queued} queued");
                return session.Embedded || pr.GetValue(watch)
                    ? await CliApp.FinishAsync(session.Services, plan.Spec.Name, plan.Spec.Metrics, result.SweepId, started, ct)
                    : 0;
            }));

        var statusSweep = new Argument<string>("SWEEP") { Description = "Sweep id or name" };
        Make("status", "Cells pending, running, done and failed (with attempts and reasons); whether the sweep is complete.", statusSweep, format, watch)
            .SetAction((pr, ct) => Guard(async () =>
            {
                await using var session = await Open(pr, train: false, ct);
                var sweep = await FindAsync(session, pr.GetValue(statusSweep)!, ct);
                if (pr.GetValue(watch))
                {
                    await CliApp.WatchAsync(session.Grains, session.Store, sweep.SweepId, ct);
                }

                var report = await StatusReport.BuildAsync(session.Grains, session.Store, sweep, ct);
                if (pr.GetValue(format) == "json")
                {
                    Console.WriteLine(JsonSerializer.Serialize(report, Json));
                }
                else
                {
                    report.Print();
                }

                return 0;
            }));

        var cancelSweep = new Argument<string>("SWEEP") { Description = "Sweep id or name" };
        Make("cancel", "Stop a sweep: pending cells leave the queue; running cells stop at their next lease renewal.", cancelSweep)
            .SetAction((pr, ct) => Guard(async () =>
            {
                await using var session = await Open(pr, train: false, ct);
                var sweep = await FindAsync(session, pr.GetValue(cancelSweep)!, ct);
                await session.Grains.GetGrain<ISweepGrain>(sweep.SweepId).CancelAsync();
                Console.WriteLine($"cancelled {sweep.SweepId}");
                return 0;
            }));

        foreach (var (name, description, reset) in new[]
                 {
                     ("resume", "Re-queue every cell of a sweep that has no result (after a cancel or an outage); the database is the source of truth.", false),
                     ("rerun-failed", "Give the sweep's failed cells a fresh set of attempts and queue them again.", true),
                 })
        {
            var sweepArg = new Argument<string>("SWEEP") { Description = "Sweep id or name" };
            Make(name, description + " In embedded mode it also runs them.", sweepArg, watch, slots)
                .SetAction((pr, ct) => Guard(async () =>
                {
                    var started = DateTimeOffset.UtcNow;
                    await using var session = await Open(pr, train: true, ct);
                    var sweep = await FindAsync(session, pr.GetValue(sweepArg)!, ct);
                    var grain = session.Grains.GetGrain<ISweepGrain>(sweep.SweepId);
                    var queued = reset ? await grain.RerunFailedAsync() : await grain.ResumeAsync();
                    Console.WriteLine($"{sweep.SweepId}: {queued} cell(s) queued");
                    return session.Embedded || pr.GetValue(watch)
                        ? await CliApp.FinishAsync(session.Services, sweep.Name, sweep.Metrics, sweep.SweepId, started, ct)
                        : 0;
                }));
        }

        var db = new Command("db", "Database administration.");
        var migrate = new Command("migrate", "Create or upgrade the schema (results tables and the Orleans membership tables); idempotent.");
        migrate.Options.Add(cluster);
        migrate.Options.Add(shared.ClusterFile);
        migrate.Options.Add(dataDir);
        migrate.SetAction((pr, ct) => Guard(async () =>
        {
            await using var store = Session.OpenStore(pr.GetValue(cluster), pr.GetValue(dataDir)!, create: true, clusterFile: pr.GetValue(shared.ClusterFile));
            var before = await store.GetSchemaVersionAsync(ct);
            await store.EnsureSchemaAsync(ct);
            var after = await store.GetSchemaVersionAsync(ct);
            Console.WriteLine(before == after
                ? $"schema is up to date (version {after})"
                : $"schema migrated from version {before} to {after}");
            return 0;
        }));
        db.Subcommands.Add(migrate);
        root.Subcommands.Add(db);
    }

    internal static async Task<SweepRecord> FindAsync(Session session, string idOrName, CancellationToken ct)
    {
        if (await session.Store.FindSweepAsync(idOrName, ct) is { } sweep)
        {
            return sweep;
        }

        var known = (await session.Store.GetSweepsAsync(null, ct)).Select(s => $"{s.SweepId} ({s.Name})").ToList();
        throw new ArgumentException($"no sweep with id or name '{idOrName}' in {session.Database}" +
            (known.Count == 0 ? " (there are no sweeps yet)" : $"; known: {string.Join(", ", known.TakeLast(10))}"));
    }

    /// <summary>One-line errors and exit codes: 2 for bad input, 1 when the cluster or database cannot be used.</summary>
    internal static async Task<int> Guard(Func<Task<int>> action)
    {
        try
        {
            return await action();
        }
        catch (SpecValidationException ex)
        {
            Console.Error.WriteLine(ex.Message);
            return CliApp.ExitInvalidInput;
        }
        catch (ArgumentException ex)
        {
            Console.Error.WriteLine($"error: {ex.Message}");
            return CliApp.ExitInvalidInput;
        }
        catch (Exception ex) when (ex is not ClusterUnreachableException && (GrainCalls.IsTransient(ex) || ex is Npgsql.NpgsqlException ||
                                                                            ex.GetBaseException() is Npgsql.NpgsqlException or System.Net.Sockets.SocketException))
        {
            // EF Core wraps a refused connection in its retry exception; the endpoint comes from the connection string.
            var why = ex.GetBaseException().Message;
            var at = Session.ClusterEndpoint is { } endpoint ? $" at {endpoint}" : "";
            Console.Error.WriteLine($"error: cannot reach the cluster or its database{at}: {(ex.Message == why ? why : $"{ex.Message} ({why})")}");
            return 1;
        }
        catch (InvalidOperationException ex)
        {
            Console.Error.WriteLine($"error: {ex.Message}");
            return 1;
        }
    }
}
