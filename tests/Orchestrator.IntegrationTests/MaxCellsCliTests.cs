namespace Orchestrator.IntegrationTests;

/// <summary><c>--max-cells</c> on the commands that expand a spec: the count is shown, and the limit can be raised.</summary>
public sealed class MaxCellsCliTests : IDisposable
{
    private const string Spec = """
        name: cells
        dataset: {kind: synthetic-e2e}
        model: {preset: tiny}
        methods: [lora]
        grid: {sizes: [10], subsamples: 2, seeds: [0, 1, 2]}
        """;

    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("max-cells-");

    public void Dispose() => _dir.Delete(recursive: true);

    [Fact]
    public async Task Validate_run_and_submit_refuse_more_cells_than_the_limit_and_validate_accepts_a_raised_one()
    {
        var spec = Path.Combine(_dir.FullName, "cells.yaml");
        await File.WriteAllTextAsync(spec, Spec);
        var data = Path.Combine(_dir.FullName, "data");
        foreach (var command in new[] { "validate", "run", "submit" })
        {
            string[] args = command == "validate" ? [command, spec, "--max-cells", "5"] : [command, spec, "--max-cells", "5", "--data-dir", data];
            var (exit, _, err) = await CliCapture.RunAsync(args);
            Assert.Equal(2, exit);
            Assert.Contains("grid: the spec expands to 6 cells", err, StringComparison.Ordinal);
            Assert.Contains("limit of 5", err, StringComparison.Ordinal);
            Assert.Contains("--max-cells 6", err, StringComparison.Ordinal);
        }

        Assert.False(Directory.Exists(data)); // refused before anything was opened
        var (ok, output, _) = await CliCapture.RunAsync("validate", spec, "--max-cells", "6");
        Assert.Equal(0, ok);
        Assert.Contains("6 cells", output, StringComparison.Ordinal);
    }
}
