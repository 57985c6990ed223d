using Orchestrator.Training.Peft.Adapter;
using Orchestrator.Training.Peft.AdapterFusion;
using Orchestrator.Training.Peft.AdapterHoulsby;
using Orchestrator.Training.Peft.AdapterParallel;
using Orchestrator.Training.Peft.Bbt;
using Orchestrator.Training.Peft.BitFit;
using Orchestrator.Training.Peft.ChildTuning;
using Orchestrator.Training.Peft.Finetune;
using Orchestrator.Training.Peft.FtTop;
using Orchestrator.Training.Peft.HeadOnly;
using Orchestrator.Training.Peft.HuggingFace;
using Orchestrator.Training.Peft.IA3;
using Orchestrator.Training.Peft.LlamaAdapter;
using Orchestrator.Training.Peft.LnTuning;
using Orchestrator.Training.Peft.Lora;
using Orchestrator.Training.Peft.Prefix;
using Orchestrator.Training.Peft.PromptTuning;
using Orchestrator.Training.Peft.Proxy;
using Orchestrator.Training.Peft.Ptuning;
using Orchestrator.Training.Peft.PtuningV2;

namespace Orchestrator.Training.Peft;

/// <summary>A registered method: its name, a one-line summary and its options with their defaults.</summary>
public sealed record PeftMethodInfo(string Name, string Summary, IReadOnlyList<PeftOptionInfo> Options);

/// <summary>
/// Looks PEFT methods up by name (case-insensitive) and builds them from their options (canonical strings, as in a sweep
/// spec). Each lookup returns a fresh instance (dispose it when done).
/// </summary>
public static class PeftRegistry
{
    private sealed record Entry(string Name, string Summary, Func<PeftOptionReader, IPeftMethod> Factory, IHfPeftMapping? HuggingFace = null);

    // The one list of methods, in reading order (full fine-tuning first): each with its summary, its factory and its
    // Hugging Face PEFT mapping (null: PEFT has no type for it). Lookups, listings and the PEFT format all derive from it.
    private static readonly Entry[] Methods =
    [
        new(FinetuneMethod.MethodName, "full fine-tuning: every parameter trains", FinetuneMethod.Create),
        new(FtTopMethod.MethodName, "fine-tune only the top k blocks and ln_f (k configurable)", FtTopMethod.Create),
        new(AdapterMethod.MethodName, "Li & Liang's adapter after each block, with its own LayerNorm", AdapterMethod.Create),
        new(AdapterHoulsbyMethod.MethodName, "Houlsby sequential adapters on the attention and MLP outputs; LayerNorms train", AdapterHoulsbyMethod.Create),
        new(AdapterParallelMethod.MethodName, "parallel adapter beside each MLP (He et al.), zero-initialised up-projection", AdapterParallelMethod.Create),
        new(PrefixMethod.MethodName, "prefix-tuning: per-layer key/value prefix through an MLP discarded after training", PrefixMethod.Create, PrefixHfMapping.Instance),
        new(PromptTuningMethod.MethodName, "prompt tuning: trainable embeddings before the input", PromptTuningMethod.Create, PromptTuningHfMapping.Instance),
        new(PtuningMethod.MethodName, "P-tuning v1: virtual tokens from an LSTM or MLP prompt encoder", PtuningMethod.Create, PtuningHfMapping.Instance),
        new(PtuningV2Method.MethodName, "P-tuning v2: deep prompts, a direct per-layer key/value prefix", PtuningV2Method.Create, PrefixHfMapping.Instance),
        new(LoraMethod.MethodName, "LoRA on c_attn (q,v or all of c_attn)", LoraMethod.Create, LoraHfMapping.Instance),
        new(BitFitMethod.MethodName, "BitFit: only the biases train", BitFitMethod.Create),
        new(IA3Method.MethodName, "IA3: learned rescaling of c_attn outputs and mlp.c_proj inputs", IA3Method.Create, IA3HfMapping.Instance),
        new(LlamaAdapterMethod.MethodName, "LLaMA-Adapter: gated adaption prompts on the top layers, zero-initialised gates", LlamaAdapterMethod.Create, LlamaAdapterHfMapping.Instance),
        new(ProxyMethod.MethodName, "proxy-tuning: decoding-time base + α·(expert − anti-expert) logits", ProxyMethod.Create),
        new(LnTuningMethod.MethodName, "LN-tuning: only the LayerNorms' gains and biases train (ln_1, ln_2, ln_f)", LnTuningMethod.Create),
        new(HeadOnlyMethod.MethodName, "head-only: an untied output layer (a copy of wte, optional bias) trains on the frozen model", HeadOnlyMethod.Create),
        new(ChildTuningMethod.TaskFreeName, "Child-Tuning-F: full model, gradients masked by a fresh Bernoulli(p) mask each step (scaled 1/p)", ChildTuningMethod.CreateTaskFree),
        new(ChildTuningMethod.TaskDrivenName, "Child-Tuning-D: full model, only the top-p Fisher-information entries (estimated before training) update", ChildTuningMethod.CreateTaskDriven),
        new(BbtMethod.MethodName, "black-box tuning: prompt A·z + p0 with z optimised by CMA-ES from losses only (no gradients)", BbtMethod.Create, BbtHfMapping.Instance),
        new(AdapterFusionMethod.MethodName, "AdapterFusion: attention over the frozen adapters of the cells it depends on, per layer (Pfeiffer et al.)", AdapterFusionMethod.Create),
    ];

    private static readonly SortedDictionary<string, Entry> Factories =
        new(Methods.ToDictionary(e => e.Name, StringComparer.OrdinalIgnoreCase), StringComparer.OrdinalIgnoreCase);

    // The mapping that reads each PEFT type: the first method of the list that exports it and imports it.
    private static readonly Dictionary<string, IHfPeftMapping> Importers = Methods
        .Select(e => e.HuggingFace).OfType<IHfPeftMapping>().Where(m => m.Imports).DistinctBy(m => m.PeftType)
        .ToDictionary(m => m.PeftType, StringComparer.Ordinal);

    /// <summary>
    /// Methods of the same literature that only fit classification, with the reason: they are listed by
    /// <c>orchestrator methods</c> as not applicable and a spec naming them is refused with that reason.
    /// </summary>
    public static IReadOnlyDictionary<string, string> NotApplicable { get; } = new SortedDictionary<string, string>(StringComparer.OrdinalIgnoreCase)
    {
        ["feature-extraction"] =
            "classification only: frozen features with a trained linear classifier predict one label per input; it has no way to generate text",
        ["null-prompt"] =
            "classification only: null prompts (Logan IV et al. 2021) read label words at a [MASK] token of a masked language model; GPT-2 is a causal LM and these tasks generate text",
    };

    private static readonly string[] Listing = Methods.Select(e => e.Name).ToArray();

    /// <summary>Each method's default <c>training.base_dropout</c> (<see cref="IPeftMethod.DefaultBaseDropout"/>), by name.</summary>
    public static IReadOnlyDictionary<string, string> BaseDropoutDefaults { get; } = Factories.Keys.ToDictionary(
        name => name,
        name =>
        {
            using var method = Create(name, null);
            return method.DefaultBaseDropout;
        },
        StringComparer.OrdinalIgnoreCase);

    /// <summary>Names of the registered methods, sorted.</summary>
    public static IReadOnlyList<string> Names => Factories.Keys.ToArray();

    /// <summary>Names of the registered methods in a reading order (full fine-tuning first, then as in issue 3).</summary>
    public static IReadOnlyList<string> OrderedNames => Listing;

    /// <summary>The Hugging Face PEFT mapping of the method called <paramref name="name"/>, or null when PEFT has no type for it.</summary>
    public static IHfPeftMapping? HuggingFaceMapping(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        return Factories.TryGetValue(name.Trim(), out Entry? entry) ? entry.HuggingFace : null;
    }

    /// <summary>The mapping that imports a folder of PEFT type <paramref name="peftType"/>, or null when none does.</summary>
    public static IHfPeftMapping? HuggingFaceImporter(string peftType)
    {
        ArgumentNullException.ThrowIfNull(peftType);
        return Importers.GetValueOrDefault(peftType);
    }

    /// <summary>The PEFT types a folder may have to import here, in the list's order.</summary>
    public static IReadOnlyList<string> HuggingFaceTypes => Importers.Keys.ToArray();

    /// <summary>The method called <paramref name="name"/> with its default options.</summary>
    /// <exception cref="ArgumentException">Unknown name; the message lists the known methods.</exception>
    public static IPeftMethod Get(string name) => Create(name, null);

    /// <summary>
    /// The method called <paramref name="name"/> with <paramref name="options"/> (null or empty: defaults). Errors name the
    /// option's path under <paramref name="path"/>, e.g. <c>methods[0].options.r: expected a positive integer, got 'x'</c>.
    /// </summary>
    /// <exception cref="ArgumentException">Unknown method.</exception>
    /// <exception cref="PeftOptionsException">Unknown or invalid options (every problem listed).</exception>
    public static IPeftMethod Create(string name, IReadOnlyDictionary<string, string>? options, string path = "options")
    {
        Entry entry = Find(name);
        var reader = new PeftOptionReader(Canonical(name), options, path);
        IPeftMethod method = entry.Factory(reader);
        try
        {
            reader.Finish();
        }
        catch
        {
            method.Dispose();
            throw;
        }

        return method;
    }

    /// <summary>Every problem with <paramref name="options"/> for method <paramref name="name"/> (empty: valid).</summary>
    public static IReadOnlyList<string> Validate(string name, IReadOnlyDictionary<string, string>? options, string path = "options")
    {
        ArgumentNullException.ThrowIfNull(name);
        if (!Factories.TryGetValue(name.Trim(), out Entry? entry))
        {
            return NotApplicable.TryGetValue(name.Trim(), out string? reason)
                ? [$"method '{name.Trim()}' is not applicable to generation: {reason}"]
                : [$"unknown method '{name}'{Core.Specs.Suggestion.DidYouMean(name, Listing)} (known: {string.Join(", ", Listing)})"];
        }

        var reader = new PeftOptionReader(Canonical(name), options, path);
        using IPeftMethod method = entry.Factory(reader);
        return reader.Check();
    }

    /// <summary>The method's summary and options with defaults and descriptions.</summary>
    public static PeftMethodInfo Describe(string name)
    {
        Entry entry = Find(name);
        var reader = new PeftOptionReader(Canonical(name), null);
        using IPeftMethod method = entry.Factory(reader);
        return new PeftMethodInfo(Canonical(name), entry.Summary, reader.Declared);
    }

    public static bool TryGet(string name, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out IPeftMethod? method)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (Factories.ContainsKey(name.Trim()))
        {
            method = Create(name, null);
            return true;
        }

        method = null;
        return false;
    }

    private static Entry Find(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (Factories.TryGetValue(name.Trim(), out Entry? entry))
        {
            return entry;
        }

        if (NotApplicable.TryGetValue(name.Trim(), out string? reason))
        {
            throw new ArgumentException($"PEFT method '{name.Trim()}' is not applicable to generation: {reason}.", nameof(name));
        }

        throw new ArgumentException(
            $"Unknown PEFT method '{name}'. Known methods: {string.Join(", ", Listing)}.", nameof(name));
    }

    private static string Canonical(string name) => Factories.Keys.First(k => string.Equals(k, name.Trim(), StringComparison.OrdinalIgnoreCase));
}
