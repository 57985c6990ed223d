using System.Text.Json;
using System.Text.Json.Serialization;
using Orchestrator.Core.Cells;
using Orchestrator.Core.Specs;

namespace Orchestrator.Training;

/// <summary>
/// What a trial records about how its result was made, stored as JSON beside the result (<see cref="TrialOutcome.ProvenanceJson"/>).
/// The field names, their order and the nested shapes are what stored results hold and what their readers
/// (reproduce, rescore, reports, the web pages) look up, so they do not change.
/// </summary>
public sealed record TrialProvenance(
    [property: JsonPropertyName("code_version")] string CodeVersion,
    [property: JsonPropertyName("cell_code_version")] string CellCodeVersion,
    [property: JsonPropertyName("dataset_hash")] string DatasetHash,
    [property: JsonPropertyName("split")] string Split,
    [property: JsonPropertyName("manifest_hash")] string ManifestHash,
    [property: JsonPropertyName("base_model_hash")] string BaseModelHash,
    [property: JsonPropertyName("base")] TrialBaseProvenance Base,
    [property: JsonPropertyName("model")] object Model,
    [property: JsonPropertyName("method")] string Method,
    [property: JsonPropertyName("method_options")] SortedDictionary<string, string> MethodOptions,
    [property: JsonPropertyName("method_options_effective")] IReadOnlyDictionary<string, string> MethodOptionsEffective,
    [property: JsonPropertyName("trainable_parameters")] long TrainableParameters,
    [property: JsonPropertyName("training")] TrainingSettings Training,
    [property: JsonPropertyName("decoding")] DecodingSettings Decoding,
    [property: JsonPropertyName("decoding_banned_tokens")] int DecodingBannedTokens,
    [property: JsonPropertyName("seed")] int Seed,
    [property: JsonPropertyName("worker")] string Worker,
    [property: JsonPropertyName("device")] string Device,
    [property: JsonPropertyName("attempt")] int Attempt,
    [property: JsonPropertyName("wall_seconds")] double WallSeconds,
    [property: JsonPropertyName("timings")] TrialTimingsProvenance Timings,
    [property: JsonPropertyName("peak_rss_bytes")] long PeakRssBytes,
    [property: JsonPropertyName("train_examples")] int TrainExamples,
    [property: JsonPropertyName("dev_examples")] int DevExamples,
    [property: JsonPropertyName("eval_inputs")] int EvalInputs,
    [property: JsonPropertyName("steps")] int Steps,
    [property: JsonPropertyName("best_step")] int BestStep,
    [property: JsonPropertyName("best_dev_loss")] double BestDevLoss,
    [property: JsonPropertyName("final_train_loss")] double FinalTrainLoss,
    [property: JsonPropertyName("train_seconds")] double TrainSeconds,
    [property: JsonPropertyName("train_tokens_per_second")] double TrainTokensPerSecond,
    [property: JsonPropertyName("packing")] TrialPackingProvenance Packing,
    [property: JsonPropertyName("dependencies")] IReadOnlyList<string> Dependencies,
    [property: JsonPropertyName("reused_training")] bool ReusedTraining)
{
    // NaN losses (a cell that did not train, no dev set) are written as "NaN", as stored results hold them.
    private static readonly JsonSerializerOptions Json = new()
    {
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    public string ToJson() => JsonSerializer.Serialize(this, Json);
}

/// <summary>Seconds spent in each phase of a trial, as provenance stores them.</summary>
public sealed record TrialTimingsProvenance(
    [property: JsonPropertyName("setup")] double Setup,
    [property: JsonPropertyName("train")] double Train,
    [property: JsonPropertyName("decode")] double Decode,
    [property: JsonPropertyName("score")] double Score)
{
    public static TrialTimingsProvenance Of(TrialTimings timings) => new(timings.Setup, timings.Train, timings.Decode, timings.Score);
}

/// <summary>
/// How a trial trained: alone (<c>packed: false</c>), as a pack of one padded as its pack group pads (<c>pad_length</c>), or
/// in a pack with the cells named in <c>packed_with</c>. Fields a shape does not have are left out.
/// </summary>
public sealed record TrialPackingProvenance(
    [property: JsonPropertyName("packed")] bool Packed,
    [property: JsonPropertyName("packed_with"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyList<string>? PackedWith = null,
    [property: JsonPropertyName("largest_pack"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] int? LargestPack = null,
    [property: JsonPropertyName("capacity"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] int? Capacity = null,
    [property: JsonPropertyName("pad_length"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] int? PadLength = null)
{
    public static TrialPackingProvenance Alone { get; } = new(false);
}

/// <summary>The base a trial ran on: a randomly initialised preset (<see cref="PresetBaseProvenance"/>) or a checkpoint folder (<see cref="FolderBaseProvenance"/>).</summary>
[JsonDerivedType(typeof(PresetBaseProvenance))]
[JsonDerivedType(typeof(FolderBaseProvenance))]
public abstract record TrialBaseProvenance;

/// <summary>A preset built from its init seed, with a word-level vocabulary of the dataset's training pool.</summary>
public sealed record PresetBaseProvenance(
    [property: JsonPropertyName("kind")] string Kind,
    [property: JsonPropertyName("preset")] string Preset,
    [property: JsonPropertyName("init_seed")] int InitSeed,
    [property: JsonPropertyName("tokenizer")] string Tokenizer) : TrialBaseProvenance;

/// <summary>A checkpoint folder (<c>kind: folder</c>) or a pretrained preset (<c>kind: pretrained</c>, with its recipe and validation loss).</summary>
public sealed record FolderBaseProvenance(
    [property: JsonPropertyName("kind")] string Kind,
    [property: JsonPropertyName("directory")] string Directory,
    [property: JsonPropertyName("preset")] string? Preset,
    [property: JsonPropertyName("pretrain")] PretrainRecipe? Pretrain,
    [property: JsonPropertyName("pretrain_validation_loss")] double? PretrainValidationLoss,
    [property: JsonPropertyName("tokenizer")] string Tokenizer,
    [property: JsonPropertyName("shared_weights")] bool SharedWeights) : TrialBaseProvenance;
