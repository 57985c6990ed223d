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
/// greedily from the same prompt (source, the end id in place of the format's end token); fine-tuning trains the weights.
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

    /// <summary>Byte-level BPE without merges: ids 0–255 are the bytes, 256 is the end token &lt;/s&gt;.</summary>
    private static void WriteTokenizer(string folder)
    {
        char[] chars = HfGpt2Fixture.ByteChars();
        var vocab = Enumerable.Range(0, 256).ToDictionary(b => chars[b].ToString(), b => b);
        File.WriteAllText(Path.Combine(folder, "tokenizer.json"), $$$"""
            {"version": "1.0", "added_tokens": [{"id": {{{EndId}}}, "content": "</s>", "special": true}],
             "normalizer": null,
             "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
             "post_processor": null, "decoder": {"type": "ByteLevel"},
             "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null, "end_of_word_suffix": null,
                "fuse_unk": false, "byte_fallback": false, "ignore_merges": false, "vocab": {{{JsonSerializer.Serialize(vocab)}}}, "merges": []}}
            """);
        File.WriteAllText(Path.Combine(folder, "generation_config.json"), $$"""{"eos_token_id": {{EndId}}}""");
    }

    [Fact]
    public async Task A_llama_folder_trains_as_a_sweep_base_and_a_zero_update_lora_cell_decodes_what_the_reference_forward_does()
    {
        var fixture = new HfLlamaFixture(new HfLlamaShape(Vocab: EndId + 1, Positions: 256), seed: 4);
        string folder = Path.Combine(_dir.FullName, "llama");
        fixture.Write(folder, "F16");
        WriteTokenizer(folder);
        TestData.WritePlaces(Path.Combine(_dir.FullName, "source.jsonl"), 30);

        var plan = SweepPlanner.PlanText(Spec, OrchestratorVocabulary.Default, _dir.FullName);
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
