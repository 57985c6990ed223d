using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Orchestrator.TestKit;
using Xunit.Abstractions;

namespace Orchestrator.IntegrationTests;

/// <summary>
/// The results page as users start it, from the real command line in its own process: <c>run --ui-port</c> serves the page
/// while the sweep trains and keeps serving after it ends until SIGTERM; <c>orchestrator ui</c> serves the stored sweep
/// without training anything and stops on SIGTERM.
/// </summary>
public sealed class UiProcessTests : IDisposable
{
    private const string Spec = """
        name: uiproc
        dataset: {kind: jsonl, path: source.jsonl, eval_limit: 3}
        model:
          preset: test
        methods: [finetune]
        grid:
          sizes: [10]
          subsamples: 2
          seeds: [0]
        training:
          learning_rate: 3.0e-3
          batch_size: 5
          max_steps: 4
          warmup_steps: 1
          eval_every: 2
        decoding:
          strategy: greedy
          max_new_tokens: 5
          min_new_tokens: 1
        execution:
          max_attempts: 1
          lease_seconds: 30
        """;

    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("orch-ui-proc-");

    private readonly ITestOutputHelper output;

    public UiProcessTests(ITestOutputHelper output)
    {
        this.output = output;
        TestData.WritePlaces(Path.Combine(_dir.FullName, "source.jsonl"), 30);
        File.WriteAllText(Path.Combine(_dir.FullName, "uiproc.yaml"), Spec);
    }

    public void Dispose() => _dir.Delete(recursive: true);

    [Fact]
    public async Task Run_with_ui_port_serves_while_training_and_after_the_end_until_SIGTERM_then_ui_serves_the_stored_sweep_without_training()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(4));
        string data = Path.Combine(_dir.FullName, "data");
        int port = DashboardTests.FreePort();
        using (var run = Cli.Start(_dir.FullName, "run", "uiproc.yaml", "--data-dir", data, "--ui-port", port.ToString(System.Globalization.CultureInfo.InvariantCulture)))
        {
            using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}/"), Timeout = TimeSpan.FromSeconds(10) };
            var sweep = await PollAsync(http, s => s.GetProperty("complete").GetBoolean(), run, cts.Token);
            Assert.Equal((2, 2, 0), (sweep.GetProperty("total").GetInt32(), sweep.GetProperty("done").GetInt32(), sweep.GetProperty("failed").GetInt32()));

            await run.WaitForLineAsync("Results page still serving", cts.Token);
            Assert.False(run.Process.HasExited, "the page must keep serving after the sweep ends");
            using (var page = await http.GetAsync("", cts.Token))
            {
                Assert.True(page.IsSuccessStatusCode, $"GET / after the sweep ended: {(int)page.StatusCode}");
            }

            Assert.Equal(0, await run.TerminateAsync(cts.Token));
            output.WriteLine(run.Output);
            Assert.Contains("Finished in", run.Output, StringComparison.Ordinal);
        }

        // The stored sweep through `orchestrator ui` (nothing runs: the counts are those stored, and no cell trains again).
        var trainedBefore = await TrainingsAsync(data, cts.Token);
        Assert.Equal([1, 1], trainedBefore);
        int uiPort = DashboardTests.FreePort();
        using (var ui = Cli.Start(_dir.FullName, "ui", "--port", uiPort.ToString(System.Globalization.CultureInfo.InvariantCulture), "--data-dir", data))
        {
            using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{uiPort}/"), Timeout = TimeSpan.FromSeconds(10) };
            var sweep = await PollAsync(http, _ => true, ui, cts.Token);
            Assert.Equal((2, 2, true), (sweep.GetProperty("total").GetInt32(), sweep.GetProperty("done").GetInt32(), sweep.GetProperty("complete").GetBoolean()));
            Assert.Equal(0, await ui.TerminateAsync(cts.Token));
            output.WriteLine(ui.Output);
        }

        Assert.Equal(trainedBefore, await TrainingsAsync(data, cts.Token));
    }

    /// <summary>How many times each cell of the sweep really trained, from <c>export</c> (its <c>trainings</c> column).</summary>
    private async Task<int[]> TrainingsAsync(string data, CancellationToken ct)
    {
        string file = Path.Combine(_dir.FullName, $"export-{Guid.NewGuid():N}.jsonl");
        using var export = Cli.Start(_dir.FullName, "export", "uiproc", "--data-dir", data, "--format", "jsonl", "--out", file);
        await export.Process.WaitForExitAsync(ct);
        Assert.True(export.Process.ExitCode == 0, export.Output);
        return File.ReadAllLines(file).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("trainings").GetInt32()).Order().ToArray();
    }

    /// <summary>Polls <c>/api/sweeps</c> until the sweep <c>uiproc</c> is listed and satisfies <paramref name="until"/>.</summary>
    private static async Task<JsonElement> PollAsync(HttpClient http, Func<JsonElement, bool> until, Cli process, CancellationToken ct)
    {
        while (true)
        {
            Assert.False(process.Process.HasExited, "the command ended before its page answered:\n" + process.Output);
            try
            {
                var list = JsonDocument.Parse(await http.GetStringAsync("api/sweeps", ct)).RootElement;
                foreach (var s in list.EnumerateArray())
                {
                    if (s.GetProperty("name").GetString() == "uiproc" && until(s))
                    {
                        return s.Clone();
                    }
                }
            }
            catch (HttpRequestException)
            {
                // Not listening yet.
            }

            await Task.Delay(250, ct);
        }
    }

    /// <summary>The real <c>orchestrator</c> program in its own process, its output collected line by line.</summary>
    private sealed class Cli : IDisposable
    {
        private readonly StringBuilder _output = new();
        private readonly List<(string Text, TaskCompletionSource Seen)> _waits = [];

        private Cli(Process process) => Process = process;

        public Process Process { get; }

        public string Output
        {
            get
            {
                lock (_output)
                {
                    return _output.ToString();
                }
            }
        }

        public static Cli Start(string workingDirectory, params string[] args)
        {
            var info = new ProcessStartInfo("dotnet")
            {
                WorkingDirectory = workingDirectory,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "orchestrator.dll"));
            foreach (var a in args)
            {
                info.ArgumentList.Add(a);
            }

            var cli = new Cli(Process.Start(info)!);
            cli.Process.OutputDataReceived += (_, e) => cli.Add(e.Data);
            cli.Process.ErrorDataReceived += (_, e) => cli.Add(e.Data);
            cli.Process.BeginOutputReadLine();
            cli.Process.BeginErrorReadLine();
            return cli;
        }

        private void Add(string? line)
        {
            if (line is null)
            {
                return;
            }

            lock (_output)
            {
                _output.AppendLine(line);
                foreach (var (text, seen) in _waits.Where(w => line.Contains(w.Text, StringComparison.Ordinal)))
                {
                    seen.TrySetResult();
                }
            }
        }

        public Task WaitForLineAsync(string text, CancellationToken ct)
        {
            var seen = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            lock (_output)
            {
                if (_output.ToString().Contains(text, StringComparison.Ordinal))
                {
                    return Task.CompletedTask;
                }

                _waits.Add((text, seen));
            }

            return seen.Task.WaitAsync(ct);
        }

        /// <summary>Sends SIGTERM, as a service manager or <c>kill</c> does, and returns the exit code.</summary>
        public async Task<int> TerminateAsync(CancellationToken ct)
        {
            using (var kill = System.Diagnostics.Process.Start("kill", ["-TERM", Process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
            {
                await kill.WaitForExitAsync(ct);
            }

            using var limit = CancellationTokenSource.CreateLinkedTokenSource(ct);
            limit.CancelAfter(TimeSpan.FromSeconds(60));
            await Process.WaitForExitAsync(limit.Token);
            Process.WaitForExit(); // the output events have all been raised
            return Process.ExitCode;
        }

        public void Dispose()
        {
            if (!Process.HasExited)
            {
                Process.Kill(entireProcessTree: true);
                Process.WaitForExit();
            }

            Process.Dispose();
        }
    }
}
