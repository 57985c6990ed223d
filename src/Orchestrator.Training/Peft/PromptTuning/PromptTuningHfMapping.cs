using System.Text.Json.Nodes;
using Orchestrator.Training.Models;
using Orchestrator.Training.Peft.HuggingFace;
using static Orchestrator.Training.Peft.HuggingFace.HfPeftFields;
using static TorchSharp.torch;

namespace Orchestrator.Training.Peft.PromptTuning;

/// <summary>Prompt tuning as PEFT's PROMPT_TUNING (its initialisation labelled as PEFT would reproduce it).</summary>
public sealed class PromptTuningHfMapping : IHfPeftMapping
{
    public static PromptTuningHfMapping Instance { get; } = new();

    public string PeftType => "PROMPT_TUNING";

    public JsonObject Export(IPeftMethod method, ModelShape shape, IReadOnlyDictionary<string, Tensor> stored,
        List<KeyValuePair<string, Tensor>> tensors, string? tokenizer)
    {
        var prompt = (PromptTuningMethod)method;
        JsonObject fields = PromptLearning(shape, prompt.Length);
        PromptInitFields(fields, prompt.Init, prompt.InitText, prompt.SampledVocabulary, shape, tokenizer);
        tensors.Add(new(PromptEmbeddings, stored[PromptTuningMethod.StoredName]));
        return fields;
    }

    public HfPeftImport Import(JsonObject cfg, ModelShape config, Dictionary<string, Tensor> tensors, string path)
    {
        int p = CheckPromptLearning(cfg, config, path);
        string init = cfg["prompt_tuning_init"]?.GetValue<string>() ?? "RANDOM";
        var options = new Dictionary<string, string> { ["length"] = Integer(p) };
        switch (init)
        {
            case "TEXT":
                options["init"] = "text";
                // Our init_text gets a leading space before tokenising; PEFT tokenises the text as written (our exports
                // write ' ' + text), so one leading space is ours.
                string text = cfg["prompt_tuning_init_text"]?.GetValue<string>() ?? "";
                options["init_text"] = text.StartsWith(' ') ? text[1..] : text;
                break;
            case "SAMPLE_VOCAB":
                options["init"] = "vocab";
                break;
            default:
                options["init"] = "normal";
                break;
        }

        return new HfPeftImport(PromptTuningMethod.MethodName, options, PromptEmbeddingsAs(tensors, PromptTuningMethod.StoredName, path));
    }
}
