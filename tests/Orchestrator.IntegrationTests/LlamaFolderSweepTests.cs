using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Orchestrator.Abstractions;
using Orchestrator.Data;
using Orchestrator.Hosting;
using Orchestrator.Results;
using Orchestrator.TestKit;
using Orchestrator.Training;
using Orchestrator.Training.Tests.Reference;
using Orchestrator.Training.Tokenization;
using Orchestrator.Worker;

namespace Orchestrator.IntegrationTests;

/// <summary>
/// A Llama-family checkpoint folder (transformers layout, tokenizer.json, its end id in generation_config.json) as a sweep's
/// base: the cells train and decode from the checkpoint's own weights and end id. A LoRA cell whose update is still ~0
/// (B starts at zero; learning rate 1e-12) must decode exactly what an independent float64 forward of the checkpoint decodes
/// greedily from the same prompt (source, the end id in place of the format's end token, after the begin token when the
/// folder's tokenizer adds one, as Llama 3's TemplateProcessing post-processor does); fine-tuning trains the weights.
/// </summary>
public sealed class LlamaFolderSweepTests : IDisposable
{
    private const int EndId = 256;

    private const string Spec = """
        name: llama-folder
        dataset: {kind: jsonl, path: source.jsonl, eval_limit: 3}
        model:
          path: llama
        methods:
          - finetune
          - {name: lora, training: {learning_rate: 1.0e-12}}
        grid:
          sizes: [10]
          subsamples: 1
          seeds: [0]
        training:
          learning_rate: 1.0e-2
          batch_size: 5
          max_steps: 2
          warmup_steps: 0
          eval_every: 2
        decoding:
          strategy: greedy
          max_new_tokens: 6
          min_new_tokens: 1
        execution:
          max_attempts: 1
          lease_seconds: 60
        """;

    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("orch-llama-folder-");

    public void Dispose() => _dir.Delete(recursive: true);

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_llama_folder_trains_as_a_sweep_base_and_a_zero_update_lora_cell_decodes_what_the_reference_forward_does(bool begins)
    {
        // Byte-level BPE without merges: ids 0–255 the bytes, 256 </s> (the end id), 257 <|begin_of_text|>, which Llama 3's
        // post-processor puts first (no post-processor: no begin token).
        var fixture = new HfLlamaFixture(new HfLlamaShape(Vocab: HfLlamaTokenizer.Begin + 1, Positions: 256), seed: 4);
        string folder = Path.Combine(_dir.FullName, "llama");
        fixture.Write(folder, "F16");
        HfLlamaTokenizer.Write(folder, begins ? HfLlamaTokenizer.Llama3Template : "null", tokenizerConfig: null);
        TestData.WritePlaces(Path.Combine(_dir.FullName, "source.jsonl"), 30);

        var plan = SweepPlanner.PlanText(Spec, OrchestratorVocabulary.Default, _dir.FullName);
        Assert.All(plan.Cells, c => Assert.Equal(begins ? HfLlamaTokenizer.Begin : null, c.Model.BeginToken)); // part of the key
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        using var host = EmbeddedHost.Build(new EmbeddedOptions { DataDirectory = Path.Combine(_dir.FullName, "data"), WorkerSlots = 1 });
        await host.StartAsync(cts.Token);
        var grains = host.Services.GetRequiredService<IGrainFactory>();
        await SweepSubmitter.SubmitAsync(grains, plan);
        var final = await SweepSubmitter.WaitAsync(grains, plan.SweepId, null, TimeSpan.FromMilliseconds(200), cts.Token);
        var rows = await host.Services.GetRequiredService<IResultStore>().GetSweepCellsAsync(plan.SweepId, cts.Token);
        await host.StopAsync(CancellationToken.None);
        Assert.True((final.Done, final.Failed) == (2, 0), string.Join("\n", rows.Select(r => r.Result?.Error)));

        // The reference: the checkpoint's float64 forward, greedy over the tokenizer's ids, newline bytes banned as the
        // decoder bans them, the end id banned before the first new token (min_new_tokens 1) and stopping there after.
        var tokenizer = HfBpeTokenizer.Load(Path.Combine(folder, "tokenizer.json"), EndId);
        var banned = TokenizerFiles.NewlineTokenIds(tokenizer).ToHashSet();
        double[] inverse = fixture.InverseFrequencies(10000, null, 1, 1, 4, 0);
        var cell = plan.Cells.Single(c => c.Method == "lora");
        var eval = DatasetCatalog.Load(cell.Dataset).EvalFor(cell.Split);
        var lora = rows.Single(r => r.Cell.Method == "lora").Result!;
        Assert.Equal(3, lora.Outputs.Count);
        Assert.Contains(lora.Outputs, o => o.Trim().Length > 0);
        for (int i = 0; i < eval.Count; i++)
        {
            var ids = tokenizer.Encode(" " + eval[i].Source + " ").Append(EndId).ToList();
            if (begins) ids.Insert(0, HfLlamaTokenizer.Begin);
            var generated = new List<int>();
            for (int step = 0; step < 6; step++)
            {
                var logits = fixture.Logits(ids.ToArray(), inverse);
                int best = -1;
                for (int v = 0; v < fixture.Shape.Vocab; v++)
                {
                    if (banned.Contains(v) || (step == 0 && v == EndId)) continue;
                    if (best < 0 || logits[ids.Count - 1, v] > logits[ids.Count - 1, best]) best = v;
                }

                if (best == EndId) break;
                generated.Add(best);
                ids.Add(best);
            }

            Assert.Equal(tokenizer.Decode(generated).Trim(), lora.Outputs[i].Trim());
        }

        var provenance = JsonDocument.Parse(lora.ProvenanceJson).RootElement;
        Assert.Equal("folder", provenance.GetProperty("base").GetProperty("kind").GetString());
        Assert.Equal(2, provenance.GetProperty("model").GetProperty("KeyValueHeads").GetInt32());

        // Fine-tuning really trains the checkpoint's weights: its final training loss differs from the frozen base's.
        var finetune = JsonDocument.Parse(rows.Single(r => r.Cell.Method == "finetune").Result!.ProvenanceJson).RootElement;
        Assert.NotEqual(provenance.GetProperty("final_train_loss").GetDouble(), finetune.GetProperty("final_train_loss").GetDouble());
    }
}
