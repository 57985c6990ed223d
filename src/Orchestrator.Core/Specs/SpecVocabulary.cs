namespace Orchestrator.Core.Specs;

/// <summary>
/// The names a spec may use that are defined by other layers (method plugins, dataset readers, metrics,
/// decoders). The host passes the real registries; the parser stays free of those dependencies.
/// <paramref name="NotApplicableMethods"/> names methods that exist in the literature but cannot run here (e.g.
/// classification-only methods), each with the reason a spec naming it is refused.
/// </summary>
public sealed record SpecVocabulary(
    IReadOnlyCollection<string> Methods,
    IReadOnlyCollection<string> DatasetKinds,
    IReadOnlyCollection<string> Metrics,
    IReadOnlyCollection<string> DecodingStrategies,
    IReadOnlyCollection<string> ModelPresets,
    IReadOnlyDictionary<string, string>? NotApplicableMethods = null)
{
    /// <summary>
    /// Each method's default <c>training.base_dropout</c> (<c>eval</c> or a rate), declared by its plugin; a method not listed
    /// trains its base with GPT-2's dropout 0.1.
    /// </summary>
    public IReadOnlyDictionary<string, string> BaseDropoutDefaults { get; init; } = new Dictionary<string, string>();

    /// <summary>The default base dropout of <paramref name="method"/> (canonical).</summary>
    public string DefaultBaseDropout(string method) =>
        BaseDropoutDefaults.FirstOrDefault(kv => string.Equals(kv.Key, method, StringComparison.OrdinalIgnoreCase)).Value is { } d
            ? TrainingSpec.CanonicalBaseDropout(d) ?? throw new ArgumentException($"method {method} declares base dropout '{d}', which is neither 'eval' nor a rate in [0, 1)")
            : TrainingSpec.BaseDropoutGpt2;
}
