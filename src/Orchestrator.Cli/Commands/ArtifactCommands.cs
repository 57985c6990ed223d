using System.CommandLine;
using System.Globalization;
using Orchestrator.Hosting;
using Orchestrator.Results;
using Orchestrator.Results.Artifacts;
using Spectre.Console;

namespace Orchestrator.Cli.Commands;

/// <summary><c>artifacts list</c> and <c>artifacts gc</c>: the content-addressed store of trained methods that later stages need.</summary>
internal static class ArtifactCommands
{
    public static void Register(RootCommand root, Option<string> dataDir)
    {
        var cluster = new Option<string?>("--cluster")
        {
            Description = "PostgreSQL connection string of a running cluster (or env ORCHESTRATOR_CLUSTER); the embedded results file when absent",
        };
        var clusterFile = SessionOptions.ClusterFileOption();
        var artifactsDir = new Option<string?>("--artifacts")
        {
            Description = "The artifact directory (default: artifacts under the data directory, as the workers use)",
        };
        var command = new Command("artifacts", "The artifact store: trained methods of cells that cells of later stages need.");

        var list = new Command("list", "Every indexed artifact: cell, content hash, size, age, and whether its folder is present and needed.");
        list.Options.Add(cluster);
        list.Options.Add(clusterFile);
        list.Options.Add(dataDir);
        list.Options.Add(artifactsDir);
        list.SetAction((pr, ct) => SweepCommands.Guard(async () =>
        {
            await using var store = Session.OpenStore(pr.GetValue(cluster), pr.GetValue(dataDir)!, clusterFile: pr.GetValue(clusterFile));
            var files = new ArtifactStore(Directory(pr.GetValue(artifactsDir), pr.GetValue(dataDir)!));
            var needed = await store.GetNeededCellKeysAsync(ct);
            var artifacts = await store.ListArtifactsAsync(ct);
            var table = new Table().AddColumn("cell").AddColumn("sha256").AddColumn(new TableColumn("bytes").RightAligned()).AddColumn("created")
                .AddColumn("needed").AddColumn("folder");
            foreach (var a in artifacts)
            {
                table.AddRow(a.CellKey[..12], a.Sha256[..12], a.Bytes.ToString("N0", CultureInfo.InvariantCulture),
                    a.CreatedAt.ToString("yyyy-MM-dd HH:mm", CultureInfo.InvariantCulture), needed.Contains(a.CellKey) ? "yes" : "no",
                    System.IO.Directory.Exists(files.PathOf(a.Sha256)) ? "present" : "[red]missing[/]");
            }

            AnsiConsole.Write(table);
            Console.WriteLine($"{artifacts.Count} artifact(s), {artifacts.DistinctBy(a => a.Sha256).Sum(a => a.Bytes):N0} bytes, in {files.Root}");
            return 0;
        }));

        var olderThan = new Option<double>("--older-than")
        {
            Description = "Only remove unneeded artifacts at least this many hours old (default 0: all unneeded ones)",
            DefaultValueFactory = _ => 0,
        };
        var dryRun = new Option<bool>("--dry-run") { Description = "Say what would be removed; remove nothing" };
        var gc = new Command("gc",
            "Remove artifacts that no stored cell needs (older than --older-than), folders the index does not name, and stale staging folders. " +
            "Artifacts that a cell of a later stage needs are always kept.");
        gc.Options.Add(cluster);
        gc.Options.Add(clusterFile);
        gc.Options.Add(dataDir);
        gc.Options.Add(artifactsDir);
        gc.Options.Add(olderThan);
        gc.Options.Add(dryRun);
        gc.SetAction((pr, ct) => SweepCommands.Guard(async () =>
        {
            var hours = pr.GetValue(olderThan);
            if (!(hours >= 0) || double.IsInfinity(hours))
            {
                throw new ArgumentException($"--older-than must be a number of hours >= 0, got {hours}");
            }

            await using var store = Session.OpenStore(pr.GetValue(cluster), pr.GetValue(dataDir)!, clusterFile: pr.GetValue(clusterFile));
            var files = new ArtifactStore(Directory(pr.GetValue(artifactsDir), pr.GetValue(dataDir)!));
            var dry = pr.GetValue(dryRun);
            var result = await ArtifactRetention.CollectAsync(store, files, TimeSpan.FromHours(hours), dry, DateTimeOffset.UtcNow, ct);
            var verb = dry ? "would remove" : "removed";
            Console.WriteLine($"{verb} {result.Removed.Count} unneeded artifact(s) and {result.OrphanFolders.Count} unindexed folder(s), " +
                              $"{result.BytesFreed:N0} bytes; kept {result.KeptNeeded} needed and {result.KeptRecent} recent" +
                              (result.StagingFoldersRemoved > 0 ? $"; removed {result.StagingFoldersRemoved} stale staging folder(s)" : ""));
            return 0;
        }));

        command.Subcommands.Add(list);
        command.Subcommands.Add(gc);
        root.Subcommands.Add(command);
    }

    /// <summary>The option's directory, else <c>artifacts</c> under the data directory (the workers' default too).</summary>
    private static string Directory(string? option, string? dataDir) =>
        option ?? new EmbeddedOptions { DataDirectory = Core.Paths.OrchestratorHome.Locate(dataDir).Path }.ArtifactDirectory;
}
