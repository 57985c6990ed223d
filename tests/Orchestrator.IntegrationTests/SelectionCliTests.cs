namespace Orchestrator.IntegrationTests;

/// <summary>
/// A spec with <c>selection:</c>: validate lists its selection cells; run and submit refuse it (the grid would otherwise run
/// with the spec's own settings, not the chosen ones) before anything is opened.
/// </summary>
public sealed class SelectionCliTests : IDisposable
{
    private const string Spec = """
        name: chooses
        dataset: {kind: synthetic-e2e}
        model: {preset: tiny}
        methods: [finetune, {name: lora, selection: {options.r: [4, 8]}}]
        grid: {sizes: [10], subsamples: 2, seeds: [0, 1]}
        selection: {learning_rate: [1.0e-4, 1.0e-3]}
        """;

    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("selection-cli-");

    public void Dispose() => _dir.Delete(recursive: true);

    [Fact]
    public async Task Validate_lists_the_selection_cells_and_run_and_submit_refuse_to_run_without_the_choice()
    {
        var spec = Path.Combine(_dir.FullName, "chooses.yaml");
        await File.WriteAllTextAsync(spec, Spec);
        var (ok, output, _) = await CliCapture.RunAsync("validate", spec);
        Assert.Equal(0, ok);
        Assert.Contains("Selection: 4 cells (chosen by dev_loss", output, StringComparison.Ordinal);
        Assert.Contains("selection/lora n=10 sub0 seed0  options.r=8", output, StringComparison.Ordinal);
        Assert.Contains("selection/finetune n=10 sub0 seed0  learning_rate=0.001", output, StringComparison.Ordinal);

        var data = Path.Combine(_dir.FullName, "data");
        foreach (var command in new[] { "run", "submit" })
        {
            var (exit, _, err) = await CliCapture.RunAsync(command, spec, "--data-dir", data);
            Assert.Equal(2, exit);
            Assert.Contains("does not run them yet", err, StringComparison.Ordinal);
        }

        Assert.False(Directory.Exists(data));
    }
}
