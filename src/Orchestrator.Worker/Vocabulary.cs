using Orchestrator.Core.Specs;
using Orchestrator.Data;
using Orchestrator.Training;
using Orchestrator.Training.Models;
using Orchestrator.Training.Peft;

namespace Orchestrator.Worker;

/// <summary>The names specs may use, taken from the real registries (methods, readers, metrics, presets).</summary>
public static class OrchestratorVocabulary
{
    public static SpecVocabulary Default { get; } = new(
        PeftRegistry.Names,
        DatasetCatalog.Kinds,
        MetricSuite.Names,
        TrialRunner.DecodingStrategies,
        [.. Gpt2Config.PresetNames, .. LlamaConfig.PresetNames],
        PeftRegistry.NotApplicable)
    {
        BaseDropoutDefaults = PeftRegistry.BaseDropoutDefaults,
    };
}
