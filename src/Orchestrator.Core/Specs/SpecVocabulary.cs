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
    IReadOnlyDictionary<string, string>? NotApplicableMethods = null);
