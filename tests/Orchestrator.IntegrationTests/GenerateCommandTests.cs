using System.Text.Json;
using Orchestrator.Training.Tests.Reference;

namespace Orchestrator.IntegrationTests;

/// <summary>
/// <c>orchestrator generate</c> run in process on checkpoints the test writes, against the greedy continuation of the
/// independent float64 reference forwards (no cache, full recomputation per step).
/// </summary>
public sealed class GenerateCommandTests : IDisposable
{
    private readonly DirectoryInfo _root = Directory.CreateTempSubdirectory("orch-generate-");

    public void Dispose() => _root.Delete(recursive: true);

    private sealed record Output(int[] input_ids, int[] output_ids, string? text);

    private static async Task<Output> Json(params string[] args)
    {
        var (exit, stdout, stderr) = await CliCapture.RunAsync(["generate", .. args, "--format", "json"]);
        Assert.True(exit == 0, $"exit {exit}: {stderr}");
        return JsonSerializer.Deserialize<Output>(stdout)!;
    }

    [Fact]
    public async Task Llama_checkpoint_greedy_json_is_the_reference_continuation_and_stops_at_eos()
    {
        var fixture = new HfLlamaFixture(new HfLlamaShape(Heads: 4, KeyValueHeads: 2), seed: 1);
        string dir = Path.Combine(_root.FullName, "llama");
        fixture.Write(dir, "F32");
        double[] inverse = fixture.InverseFrequencies(10000, null, 1, 1, 4, 0);
        int[] prompt = [1, 44, 17, 90];

        var expected = fixture.Greedy(prompt, 10, inverse, []);
        var output = await Json("--model", dir, "--input-ids", "1,44,17,90", "--max-new-tokens", "10");
        Assert.Equal(prompt, output.input_ids);
        Assert.Equal(expected, output.output_ids);
        Assert.Null(output.text); // no tokenizer in the folder

        // With the third generated token declared the end (generation_config.json), generation stops before it.
        File.WriteAllText(Path.Combine(dir, "generation_config.json"), $$"""{"eos_token_id": [{{expected[2]}}]}""");
        var stopped = await Json("--model", dir, "--input-ids", "1,44,17,90", "--max-new-tokens", "10");
        Assert.Equal(expected.TakeWhile(t => t != expected[2]), stopped.output_ids);

        var beam = await Json("--model", dir, "--input-ids", "1,44,17,90", "--max-new-tokens", "6", "--strategy", "beam", "--beams", "1");
        Assert.Equal(expected.TakeWhile(t => t != expected[2]).Take(6), beam.output_ids);
    }

    [Theory]
    [InlineData(null, true)]
    [InlineData("""{"add_bos_token": false}""", false)]
    public async Task Llama_input_text_gets_the_begin_token_exactly_when_the_folders_tokenizer_adds_it(string? tokenizerConfig, bool begins)
    {
        const int Begin = HfLlamaTokenizer.Begin, End = HfLlamaTokenizer.End;
        var fixture = new HfLlamaFixture(new HfLlamaShape(Vocab: Begin + 1), seed: 3);
        string dir = Path.Combine(_root.FullName, begins ? "llama3" : "no-bos");
        fixture.Write(dir, "F32");
        HfLlamaTokenizer.Write(dir, HfLlamaTokenizer.Llama3Template, tokenizerConfig);
        int[] text = [104, 101, 108, 108, 111]; // "hello": bytes, the tokenizer has no merges
        int[] expectedInput = begins ? [Begin, .. text] : text;

        var output = await Json("--model", dir, "--input", "hello", "--max-new-tokens", "6");
        Assert.Equal(expectedInput, output.input_ids);
        Assert.Equal(fixture.Greedy(expectedInput, 6, fixture.InverseFrequencies(10000, null, 1, 1, 4, 0), [End]).Where(t => t != End), output.output_ids);

        // --input-ids are taken as given, with or without the begin token.
        var given = await Json("--model", dir, "--input-ids", "104,101", "--max-new-tokens", "1");
        Assert.Equal(new[] { 104, 101 }, given.input_ids);
    }

    [Fact]
    public async Task Gpt2_checkpoint_greedy_from_text_is_the_reference_continuation()
    {
        var fixture = new HfGpt2Fixture(layers: 2, heads: 2, width: 16, vocab: 260, positions: 32, seed: 5);
        string dir = Path.Combine(_root.FullName, "gpt2");
        fixture.Write(dir, "F32", transformerPrefix: false, maskBuffers: false, lmHead: false);
        var ids = new List<int> { 'h', 'e', 'l', 'l', 'o' }; // bytes: the fixture's vocabulary has no merges
        var expected = new List<int>();
        for (int step = 0; step < 8; step++)
        {
            var logits = fixture.Logits(ids.ToArray());
            int best = 0;
            for (int v = 1; v < fixture.Vocab; v++) if (logits[ids.Count - 1, v] > logits[ids.Count - 1, best]) best = v;
            if (best == 256) break; // <|endoftext|>
            expected.Add(best);
            ids.Add(best);
        }

        var output = await Json("--model", dir, "--input", "hello", "--max-new-tokens", "8");
        Assert.Equal(new[] { 104, 101, 108, 108, 111 }, output.input_ids);
        Assert.Equal(expected, output.output_ids);
        Assert.NotNull(output.text);
    }

    [Fact]
    public async Task A_preset_runs_from_its_seed_and_bad_input_is_refused_with_the_reason()
    {
        var a = await Json("--model", "llama-tiny", "--init-seed", "3", "--input-ids", "5,6,7", "--max-new-tokens", "4");
        var b = await Json("--model", "llama-tiny", "--init-seed", "3", "--input-ids", "5,6,7", "--max-new-tokens", "4");
        Assert.Equal(4, a.output_ids.Length);
        Assert.Equal(a.output_ids, b.output_ids);

        var (exit, _, stderr) = await CliCapture.RunAsync("generate", "--model", "llama-tiny", "--input", "hi", "--input-ids", "1");
        Assert.Equal(2, exit);
        Assert.Contains("exactly one of --input", stderr);

        (exit, _, stderr) = await CliCapture.RunAsync("generate", "--model", "llama-tiny", "--input-ids", "1,999");
        Assert.Equal(2, exit);
        Assert.Contains("999", stderr);

        (exit, _, stderr) = await CliCapture.RunAsync("generate", "--model", "no-such-model", "--input-ids", "1");
        Assert.Equal(2, exit);
        Assert.Contains("neither a folder nor a preset", stderr);
    }
}
