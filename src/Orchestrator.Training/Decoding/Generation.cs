using Orchestrator.Training.Checkpoints;
using Orchestrator.Training.Models;
using Orchestrator.Training.Peft;
using Orchestrator.Training.Peft.HuggingFace;
using Orchestrator.Training.Tokenization;

namespace Orchestrator.Training.Decoding;

/// <summary>What <c>orchestrator generate</c> is asked for.</summary>
/// <param name="Model">A model folder (GPT-2 or the Llama family) or a preset name (random weights from <paramref name="InitSeed"/>).</param>
/// <param name="Adapter">A trained method's folder (our format or Hugging Face PEFT) on a base of either family, or null.</param>
/// <param name="Text">Input text (encoded by the model folder's tokenizer), or null when <paramref name="InputIds"/> are given.</param>
/// <param name="Vocab">Vocabulary of a preset that takes it from a tokenizer (llama-tiny, llama-test, tiny, test); default 256.</param>
public sealed record GenerateRequest(
    string Model,
    string? Text,
    IReadOnlyList<int>? InputIds,
    int MaxNewTokens = 20,
    string Strategy = "greedy",
    int Beams = 4,
    string? Adapter = null,
    long InitSeed = 0,
    int? Vocab = null);

/// <summary>The input ids the model saw, only the new ids, and their text (null without a tokenizer).</summary>
public sealed record GenerateResult(IReadOnlyList<int> InputIds, IReadOnlyList<int> OutputIds, string? Text);

/// <summary>
/// Loads a base (either family), optionally a trained method on it, and continues one input: greedy or beam, stopping
/// at the checkpoint's end ids (Llama: generation_config.json, else config.json; GPT-2: &lt;|endoftext|&gt;) or after the
/// token limit. Text is encoded as given, after the begin token a Llama-family folder's tokenizer adds (Llama 2, Mistral,
/// Llama 3; <see cref="ITextTokenizer.BeginToken"/>); input ids are used as they are.
/// </summary>
public static class Generation
{
    /// <exception cref="ArgumentException">Bad request (unknown preset, no input, ids outside the vocabulary, …).</exception>
    /// <exception cref="NotSupportedException">Something not implemented, named (a method on a Llama base, a tokenizer type).</exception>
    public static GenerateResult Run(GenerateRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        if ((request.Text is null) == (request.InputIds is null))
        {
            throw new ArgumentException("Give exactly one of --input TEXT and --input-ids 1,2,3.");
        }

        if (request.Strategy is not ("greedy" or "beam")) throw new ArgumentException($"Unknown strategy '{request.Strategy}': greedy or beam.");
        if (request.MaxNewTokens < 1) throw new ArgumentException("--max-new-tokens must be at least 1.");
        if (request.Beams < 1) throw new ArgumentException("--beams must be at least 1.");

        bool folder = Directory.Exists(request.Model);
        if (folder ? LlamaCheckpoint.IsLlamaFolder(request.Model) : LlamaConfig.IsPreset(request.Model))
        {
            return RunLlama(request, folder);
        }

        return RunGpt2(request, folder);
    }

    private static GenerateResult RunLlama(GenerateRequest request, bool folder)
    {
        LlamaModel model;
        ITextTokenizer? tokenizer = null;
        if (folder)
        {
            model = LlamaCheckpoint.Load(request.Model);
            if (request.Text is not null) tokenizer = LlamaCheckpoint.LoadTokenizer(request.Model, model.Config);
        }
        else
        {
            model = new LlamaModel(LlamaConfig.Preset(request.Model, request.Vocab ?? (LlamaConfig.Preset(request.Model).VocabSize > 0 ? null : 256)), request.InitSeed);
            model.eval();
            if (request.Text is not null) throw new ArgumentException($"The preset '{request.Model}' has no tokenizer: pass --input-ids.");
        }

        using (model)
        {
            using IPeftMethod? method = request.Adapter is null ? null : LoadAdapter(model, request.Adapter);
            using var evalMode = PeftForward.EvalMode(method, model);
            IReadOnlyList<int> input = request.InputIds ?? tokenizer!.EncodeWithBegin(request.Text!);
            var output = Continue(new LlamaStepModel(model, method), input, request, model.Config.EosTokenIds ?? []);
            return new GenerateResult(input, output, tokenizer?.Decode(output));
        }
    }

    private static GenerateResult RunGpt2(GenerateRequest request, bool folder)
    {
        Gpt2Model model;
        ITextTokenizer? tokenizer = null;
        ModelCheckpoint? checkpoint = null;
        if (folder)
        {
            checkpoint = ModelCheckpoint.Load(request.Model);
            model = checkpoint.Model;
            tokenizer = checkpoint.Tokenizer;
        }
        else
        {
            if (!Gpt2Config.PresetNames.Contains(request.Model.Trim().ToLowerInvariant()))
            {
                throw new ArgumentException(
                    $"'{request.Model}' is neither a folder nor a preset (GPT-2: {string.Join(", ", Gpt2Config.PresetNames)}; Llama: {string.Join(", ", LlamaConfig.PresetNames)}).");
            }

            var config = Gpt2Config.Preset(request.Model);
            model = new Gpt2Model(config.VocabSize > 0 && request.Vocab is null ? config : config with { VocabSize = request.Vocab ?? 256 }, request.InitSeed);
            model.eval();
            if (request.Text is not null) throw new ArgumentException($"The preset '{request.Model}' has no tokenizer: pass --input-ids.");
        }

        try
        {
            using IPeftMethod? method = request.Adapter is null ? null : LoadAdapter(model, request.Adapter);
            using var evalMode = PeftForward.EvalMode(method, model);
            IReadOnlyList<int> input = request.InputIds ?? tokenizer!.Encode(request.Text!);
            int[] end = tokenizer is null ? [] : [tokenizer.EndOfText];
            var output = Continue(new Gpt2StepModel(model, method), input, request, end);
            return new GenerateResult(input, output, tokenizer?.Decode(output));
        }
        finally
        {
            if (checkpoint is not null) checkpoint.Dispose();
            else model.Dispose();
        }
    }

    private static IPeftMethod LoadAdapter(CausalLm model, string directory)
    {
        if (!Directory.Exists(directory)) throw new ArgumentException($"--adapter: no folder {directory}.");
        if (File.Exists(Path.Combine(directory, PeftCheckpoint.ConfigFile))) return PeftCheckpoint.Load(model, directory);
        if (File.Exists(Path.Combine(directory, HfPeftFormat.AdapterConfigFile)) || File.Exists(Path.Combine(directory, HfPeftFormat.FullConfigFile)))
        {
            return HfPeftFormat.Import(model, directory);
        }

        throw new ArgumentException(
            $"--adapter: {directory} has neither {PeftCheckpoint.ConfigFile} (a stored cell's method) nor {HfPeftFormat.AdapterConfigFile} (Hugging Face PEFT).");
    }

    private static IReadOnlyList<int> Continue(IStepLanguageModel model, IReadOnlyList<int> input, GenerateRequest request, IReadOnlyCollection<int> end) =>
        request.Strategy == "beam"
            ? TextGenerator.Beam(model, input, request.MaxNewTokens, request.Beams, end)
            : TextGenerator.Greedy(model, input, request.MaxNewTokens, end);
}
