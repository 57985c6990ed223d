using System.Globalization;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Orchestrator.Cli;
using Orchestrator.Data;
using Orchestrator.Hosting;
using Orchestrator.Results;
using Orchestrator.Results.Artifacts;
using Orchestrator.Worker;

namespace Orchestrator.IntegrationTests;

/// <summary>
/// <c>orchestrator export-hf SWEEP CELL --out DIR</c>: a LoRA cell trained in a sweep (execution.artifacts: all) is written
/// as a Hugging Face PEFT folder that generates what the stored cell's own method generates; a method Hugging Face cannot
/// load (adapter) is refused with its reason; a non-empty --out, an unknown cell and a cell without a kept method are refused.
/// </summary>
public sealed class ExportHfCliTests : IDisposable
{
    private const string Spec = """
        name: exporthf
        dataset:
          kind: synthetic-e2e
          options: {mrs: 60, seed: 3}
          eval_limit: 3
        model:
          preset: test
        methods: [{name: lora, options: {r: 4}, training: {learning_rate: 3.0e-2}}, adapter]
        grid:
          sizes: [10]
          subsamples: 1
          seeds: [0]
        training:
          learning_rate: 3.0e-3
          batch_size: 5
          max_steps: 6
          warmup_steps: 1
          eval_every: 3
        decoding: {strategy: greedy, max_new_tokens: 8, min_new_tokens: 1}
        metrics: [bleu]
        execution: {artifacts: all}
        """;

    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("orch-exporthf-");

    public void Dispose() => _dir.Delete(recursive: true);

    private Task<(int Exit, string Out, string Err)> CliAsync(params string[] args) =>
        CliCapture.RunAsync([.. args, "--data-dir", _dir.FullName]);

    [Fact]
    public async Task A_stored_lora_cell_exports_as_a_peft_folder_that_generates_as_the_stored_method_and_refusals_name_the_problem()
    {
        var plan = SweepPlanner.PlanText(Spec, OrchestratorVocabulary.Default, _dir.FullName);
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(4));
        using (var host = EmbeddedHost.Build(new EmbeddedOptions { DataDirectory = _dir.FullName }))
        {
            await host.StartAsync(cts.Token);
            var grains = host.Services.GetRequiredService<IGrainFactory>();
            await SweepSubmitter.SubmitAsync(grains, plan);
            var final = await SweepSubmitter.WaitAsync(grains, plan.SweepId, null, TimeSpan.FromMilliseconds(200), cts.Token);
            Assert.Equal(2, final.Done);
            await host.StopAsync(CancellationToken.None);
        }

        var lora = plan.Cells.Single(c => c.Method == "lora");
        var adapter = plan.Cells.Single(c => c.Method == "adapter");
        var options = new EmbeddedOptions { DataDirectory = _dir.FullName };
        string storedMethod;
        await using (var store = ResultStores.Sqlite(options.ResultsDatabasePath))
        {
            var artifacts = await store.GetArtifactsAsync([lora.Key]);
            storedMethod = new ArtifactStore(options.ArtifactDirectory).Open(artifacts[lora.Key]);
        }

        // The base generate builds for the preset: the cell's init seed and the word-level vocabulary it trained with.
        int vocab;
        using (var trained = new CellRunner().Trials.LoadTrained(lora, storedMethod))
        {
            vocab = trained.Model.Shape.VocabSize;
        }

        string outDir = Path.Combine(_dir.FullName, "lora-hf");
        var (exit, output, error) = await CliAsync("export-hf", "exporthf", lora.Key[..10], "--out", outDir);
        Assert.True(exit == 0, output + error);
        Assert.Contains("PEFT type LORA", output, StringComparison.Ordinal);
        Assert.Contains(Path.GetFullPath(outDir), output, StringComparison.Ordinal);
        Assert.Contains("adapter_model.safetensors", output, StringComparison.Ordinal);

        using (var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "adapter_config.json"))))
        {
            Assert.Equal("LORA", config.RootElement.GetProperty("peft_type").GetString());
            // The default q,v LoRA of rank 4 is PEFT's one c_attn LoRA of rank 2·4 (GPT-2's Conv1D: fan_in_fan_out).
            Assert.Equal(8, config.RootElement.GetProperty("r").GetInt32());
            Assert.Equal(["c_attn"], config.RootElement.GetProperty("target_modules").EnumerateArray().Select(t => t.GetString()).ToList());
            Assert.True(config.RootElement.GetProperty("fan_in_fan_out").GetBoolean());
        }

        string[] Generate(string? adapterDir) =>
        [
            "generate", "--model", "test", "--init-seed", lora.Model.InitSeed.ToString(CultureInfo.InvariantCulture),
            "--vocab", vocab.ToString(CultureInfo.InvariantCulture), .. (adapterDir is null ? [] : new[] { "--adapter", adapterDir }),
            "--input-ids", "1,5,9,12,3", "--max-new-tokens", "12", "--format", "json",
        ];
        var (storedExit, storedOut, storedErr) = await GenerateAsync(Generate(storedMethod));
        Assert.True(storedExit == 0, storedOut + storedErr);
        var (hfExit, hfOut, hfErr) = await GenerateAsync(Generate(outDir));
        Assert.True(hfExit == 0, hfOut + hfErr);
        using (var storedJson = JsonDocument.Parse(storedOut))
        using (var hfJson = JsonDocument.Parse(hfOut))
        {
            var expected = storedJson.RootElement.GetProperty("output_ids").EnumerateArray().Select(e => e.GetInt32()).ToList();
            Assert.NotEmpty(expected);
            Assert.Equal(expected, hfJson.RootElement.GetProperty("output_ids").EnumerateArray().Select(e => e.GetInt32()).ToList());

            // The comparison means something: the trained LoRA changes what the base alone generates.
            var (baseExit, baseOut, baseErr) = await GenerateAsync(Generate(null));
            Assert.True(baseExit == 0, baseOut + baseErr);
            using var baseJson = JsonDocument.Parse(baseOut);
            Assert.NotEqual(expected, baseJson.RootElement.GetProperty("output_ids").EnumerateArray().Select(e => e.GetInt32()).ToList());
        }

        // A non-empty --out is refused, and what is there is left alone.
        var before = Directory.GetFiles(outDir).Select(File.ReadAllBytes).ToList();
        var (againExit, _, againErr) = await CliAsync("export-hf", "exporthf", lora.Key[..10], "--out", outDir);
        Assert.Equal(CliApp.ExitInvalidInput, againExit);
        Assert.Contains("exists and is not empty", againErr, StringComparison.Ordinal);
        Assert.Equal(before, Directory.GetFiles(outDir).Select(File.ReadAllBytes).ToList());

        // Adapters: transformers would load the folder as the base model; refused with the reason, nothing written.
        string adapterOut = Path.Combine(_dir.FullName, "adapter-hf");
        var (refusedExit, _, refusedErr) = await CliAsync("export-hf", "exporthf", adapter.Key[..10], "--out", adapterOut);
        Assert.Equal(CliApp.ExitInvalidInput, refusedExit);
        Assert.Contains("error: cannot export:", refusedErr, StringComparison.Ordinal);
        Assert.Contains("adapter", refusedErr, StringComparison.Ordinal);
        Assert.False(Directory.Exists(adapterOut));

        var (unknownExit, _, unknownErr) = await CliAsync("export-hf", "exporthf", "ffffffffff", "--out", Path.Combine(_dir.FullName, "x"));
        Assert.Equal(CliApp.ExitInvalidInput, unknownExit);
        Assert.Contains("no cell of sweep", unknownErr, StringComparison.Ordinal);

        // Without the kept method (its index row gone), the error says how to keep one.
        await using (var store = ResultStores.Sqlite(options.ResultsDatabasePath))
        {
            await store.DeleteArtifactRecordsAsync([lora.Key]);
        }

        var (missingExit, _, missingErr) = await CliAsync("export-hf", "exporthf", lora.Key[..10], "--out", Path.Combine(_dir.FullName, "y"));
        Assert.Equal(CliApp.ExitInvalidInput, missingExit);
        Assert.Contains("kept no trained method", missingErr, StringComparison.Ordinal);
        Assert.Contains("execution: {artifacts: all}", missingErr, StringComparison.Ordinal);
    }

    private static Task<(int Exit, string Out, string Err)> GenerateAsync(string[] args) => CliCapture.RunAsync(args);
}
