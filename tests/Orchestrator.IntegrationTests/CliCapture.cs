using System.Globalization;
using Orchestrator.Cli;

namespace Orchestrator.IntegrationTests;

/// <summary>Runs the real command line in process and captures its exit code, standard output and standard error.</summary>
internal static class CliCapture
{
    public static async Task<(int Exit, string Out, string Err)> RunAsync(params string[] args)
    {
        var (stdout, stderr) = (Console.Out, Console.Error);
        var (outText, errText) = (new StringWriter(CultureInfo.InvariantCulture), new StringWriter(CultureInfo.InvariantCulture));
        Console.SetOut(outText);
        Console.SetError(errText);
        try
        {
            return (await CliApp.RunAsync(args), outText.ToString(), errText.ToString());
        }
        finally
        {
            Console.SetOut(stdout);
            Console.SetError(stderr);
        }
    }
}
