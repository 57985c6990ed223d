using System.Diagnostics;

namespace Orchestrator.TestKit;

internal readonly record struct ProcessResult(int ExitCode, string Output, bool TimedOut);

internal static class ProcessRunner
{
    /// <summary>
    /// Runs a process to completion. Output is read with our own tasks (not BeginOutputReadLine), so waiting for
    /// the exit does not also wait for the pipes to close: a grandchild (the postmaster) that inherited them cannot
    /// keep us waiting. After the exit the output is collected for at most two seconds.
    /// </summary>
    public static async Task<ProcessResult> RunAsync(string fileName, IEnumerable<string> arguments, TimeSpan timeout)
    {
        var psi = new ProcessStartInfo(fileName)
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var a in arguments)
        {
            psi.ArgumentList.Add(a);
        }

        using var process = Process.Start(psi)
            ?? throw new InvalidOperationException($"Could not start '{fileName}'.");
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();

        var timedOut = false;
        using (var cts = new CancellationTokenSource(timeout))
        {
            try
            {
                await process.WaitForExitAsync(cts.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                timedOut = true;
                try { process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
                await process.WaitForExitAsync().ConfigureAwait(false);
            }
        }

        var output = await Collect(stdout).ConfigureAwait(false) + await Collect(stderr).ConfigureAwait(false);
        return new ProcessResult(timedOut ? -1 : process.ExitCode, output, timedOut);
    }

    public static ProcessResult Run(string fileName, IEnumerable<string> arguments, TimeSpan timeout) =>
        Task.Run(() => RunAsync(fileName, arguments, timeout)).GetAwaiter().GetResult();

    private static async Task<string> Collect(Task<string> read)
    {
        var done = await Task.WhenAny(read, Task.Delay(TimeSpan.FromSeconds(2))).ConfigureAwait(false);
        return done == read ? await read.ConfigureAwait(false) : "";
    }
}
