using System.CommandLine;
using System.Globalization;
using Orchestrator.Core.Paths;
using Orchestrator.Data;
using Orchestrator.Data.Download;

namespace Orchestrator.Cli.Commands;

/// <summary>
/// <c>orchestrator data get NAME [--dir DIR] [--base-url URL]</c>: fetches a dataset of <see cref="DatasetSources"/> from its
/// official location into the datasets folder, verifies the pinned SHA-256 sums, unpacks archives, and prints what to put in a spec.
/// </summary>
internal static class DataGetCommand
{
    public const int ExitDownloadFailed = 1;

    public static Command Create()
    {
        var name = new Argument<string>("NAME") { Description = "Dataset: " + string.Join(", ", DatasetSources.All.Select(s => s.Name)) };
        var dir = new Option<string?>("--dir")
        {
            Description = $"Datasets folder (default: ${OrchestratorHome.DatasetsEnvironmentVariable}, else ${OrchestratorHome.EnvironmentVariable}/datasets, else ~/.local/share/orchestrator/datasets); the dataset goes into DIR/NAME",
        };
        var baseUrl = new Option<string?>("--base-url")
        {
            Description = $"Fetch from a mirror instead of the official locations: BASE/NAME/FILE (or env {DatasetDownloader.BaseUrlEnvironmentVariable})",
        };
        var command = new Command("get", "Download a dataset from its official location, verify its SHA-256 sums and unpack it; prints the path to put in a spec.");
        command.Arguments.Add(name);
        command.Options.Add(dir);
        command.Options.Add(baseUrl);
        command.SetAction((pr, ct) => RunAsync(pr.GetValue(name)!, pr.GetValue(dir), pr.GetValue(baseUrl), ct));
        return command;
    }

    public static async Task<int> RunAsync(string name, string? dir, string? baseUrl, CancellationToken ct)
    {
        if (DatasetSources.Find(name) is not { } source)
        {
            Console.Error.WriteLine($"data get: unknown dataset '{name}' (known: {string.Join(", ", DatasetSources.All.Select(s => s.Name))})");
            return CliApp.ExitInvalidInput;
        }

        var root = dir is null && DatasetNames.IsOverridden ? DatasetNames.Directory() : OrchestratorHome.DatasetsDirectory(dir);
        var mirror = baseUrl ?? (Environment.GetEnvironmentVariable(DatasetDownloader.BaseUrlEnvironmentVariable) is { Length: > 0 } env ? env : null);
        Console.WriteLine($"{source.Name}: {source.Title}");
        Console.WriteLine($"licence {source.Licence}; {source.Homepage}");
        Console.WriteLine($"into {Path.Combine(root.Path, source.Name)} (datasets folder: {root.Source})");
        using var http = new HttpClient { Timeout = Timeout.InfiniteTimeSpan };
        http.DefaultRequestHeaders.UserAgent.ParseAdd("orchestrator-data-get/1");
        var progress = new ProgressLine();
        var downloader = new DatasetDownloader(http, line => { progress.Finish(); Console.WriteLine(line); }, progress.Report) { BaseUrl = mirror };
        FetchedDataset fetched;
        try
        {
            fetched = await downloader.GetAsync(source, root.Path, ct);
        }
        catch (Exception ex) when (ex is DatasetDownloadException or DatasetException or IOException or UnauthorizedAccessException or InvalidDataException)
        {
            progress.Finish();
            Console.Error.WriteLine($"data get {source.Name}: {ex.Message}");
            return ExitDownloadFailed;
        }

        progress.Finish();
        var unverified = fetched.Files.Where(f => !f.Verified).ToList();
        var notVerified = unverified.Count > 0
            ? string.Create(CultureInfo.InvariantCulture, $", {unverified.Count} not verifiable (no pinned sum; recorded in {DatasetDownloader.SourcesFile})")
            : "";
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{source.Name} is ready in {fetched.Directory}: {fetched.Files.Count} file(s), {fetched.Files.Count - unverified.Count} verified against pinned SHA-256 sums{notVerified}."));
        var inDefault = dir is null;
        Console.WriteLine("In a spec:");
        foreach (var (path, what) in source.SpecPaths)
        {
            var local = Path.Combine(fetched.Directory, path[(DatasetNames.Scheme.Length + source.Name.Length)..].TrimStart('/'));
            Console.WriteLine(inDefault
                ? $"  dataset: {{kind: {source.Kind}, path: {path}}}   # {what}"
                : $"  dataset: {{kind: {source.Kind}, path: {local}}}   # {what}");
        }

        if (!inDefault)
        {
            Console.WriteLine($"(data:{source.Name} names resolve against ${OrchestratorHome.DatasetsEnvironmentVariable}, else ${OrchestratorHome.EnvironmentVariable}/datasets, else ~/.local/share/orchestrator/datasets; " +
                              $"set {OrchestratorHome.DatasetsEnvironmentVariable}={Path.GetFullPath(dir!)} to use them with this folder)");
        }

        return 0;
    }

    /// <summary>One progress line per file: rewritten in place on a terminal, every quarter when the output is redirected.</summary>
    private sealed class ProgressLine
    {
        private string? _target;
        private int _quarter = -1;
        private bool _open;

        public void Report(DownloadProgress p)
        {
            if (p.Target != _target)
            {
                Finish();
                _target = p.Target;
                _quarter = -1;
            }

            var text = p.Total is { } total and > 0
                ? string.Create(CultureInfo.InvariantCulture, $"{p.Target}: {Mb(p.Received)} of {Mb(total)} MB ({100.0 * p.Received / total:F0}%)")
                : string.Create(CultureInfo.InvariantCulture, $"{p.Target}: {Mb(p.Received)} MB");
            if (!Console.IsOutputRedirected)
            {
                Console.Write("\r" + text + "   ");
                _open = true;
                return;
            }

            var quarter = p.Total is { } t and > 0 ? (int)(4 * p.Received / t) : 0;
            if (quarter != _quarter)
            {
                _quarter = quarter;
                Console.WriteLine(text);
            }
        }

        public void Finish()
        {
            if (_open)
            {
                Console.WriteLine();
                _open = false;
            }
        }

        private static string Mb(long bytes) => (bytes / 1048576.0).ToString("F1", CultureInfo.InvariantCulture);
    }
}
