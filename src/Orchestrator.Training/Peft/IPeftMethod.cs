using Orchestrator.Training.Models;
using Orchestrator.Training.Tokenization;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Orchestrator.Training.Peft;

/// <summary>
/// A parameter-efficient fine-tuning method (or plain fine-tuning). Each method lives in its own folder under Peft/ and is
/// listed in <see cref="PeftRegistry"/>; an instance carries its options and, once prepared, its own tensors (dispose it).
/// <para>
/// Life cycle: <see cref="Prepare"/> (training form: freezes the base, creates the method's parameters) or <see cref="Load"/>
/// (inference form from <see cref="StoredTensors"/>), then every forward of the base passes <see cref="Hooks"/>
/// (<see cref="PeftForward"/> does that for the trainer and decoders). A method never registers modules inside the model:
/// the base stays a plain GPT-2 that other trials can share when <see cref="TrainsBaseWeights"/> is false.
/// </para>
/// </summary>
public interface IPeftMethod : IDisposable
{
    /// <summary>The registry name, e.g. "finetune".</summary>
    string Name { get; }

    /// <summary>Every option of the method with its effective value (defaults filled in), as canonical strings.</summary>
    IReadOnlyDictionary<string, string> Options { get; }

    /// <summary>True when training changes base parameters (fine-tuning, FT-top, BitFit, Houlsby's LayerNorms): such a base cannot be shared.</summary>
    bool TrainsBaseWeights { get; }

    /// <summary>
    /// The dropout of the base while this method trains when the spec gives no <c>training.base_dropout</c>: <c>eval</c> or a
    /// rate. Li &amp; Liang trained fine-tuning and adapters with GPT-2's dropout 0.1 and prefix-tuning with the base in eval
    /// mode. Here: 0.1 (the default) for methods that train base weights or insert adapter modules; <c>eval</c> for methods that
    /// keep the base frozen and add virtual tokens, key/values, low-rank or scaling terms (docs/training.md lists them).
    /// </summary>
    string DefaultBaseDropout => Core.Specs.TrainingSpec.BaseDropoutGpt2;

    /// <summary>False for methods that only combine existing models at decoding time (the trainer then does nothing).</summary>
    bool Trains { get; }

    /// <summary>
    /// Trainable parameters during training and parameters a checkpoint stores, computed from shapes only (no tensors).
    /// </summary>
    /// <exception cref="ArgumentException">The options do not fit <paramref name="config"/> (e.g. more top layers than the model has).</exception>
    ParameterCounts CountParameters(ModelShape config);

    /// <summary>
    /// Why this method cannot train on a base of <paramref name="shape"/>'s family or shape (e.g. BitFit on a Llama without
    /// biases), or null when it can. Prepare, Load and CountParameters refuse such a base with this reason.
    /// </summary>
    string? RefusalFor(ModelShape shape) => null;

    /// <summary>
    /// Prepares <paramref name="model"/> for training with this method: sets requires_grad on the base parameters (frozen or
    /// trainable) and creates the method's own parameters (deterministically from <see cref="PeftContext.Seed"/>). Returns
    /// exactly the parameters the optimizer must update. Calling it again for the same model returns the same list.
    /// </summary>
    IReadOnlyList<Parameter> Prepare(CausalLm model, PeftContext context);

    /// <summary>The extension points to pass to every forward of the base (null: the plain base). Set by Prepare/Load.</summary>
    Gpt2Hooks? Hooks { get; }

    /// <summary>The model the trainer trains and scores when it is not the base with <see cref="Hooks"/> (proxy-tuning's expert); else null.</summary>
    CausalLm? TrainedModel { get; }

    /// <summary>
    /// Decoding-time combination of models: next-token logits are Σ weight·logits of each model (each with its own hooks,
    /// truncated to the base vocabulary). Null: decode the base with <see cref="Hooks"/>.
    /// </summary>
    IReadOnlyList<WeightedModel>? LogitMixture { get; }

    /// <summary>
    /// What a checkpoint of the trained method holds, in inference form (e.g. prefix-tuning's materialised key/values, not its
    /// MLP), by name; the tensors belong to the method or the model (do not dispose). Requires Prepare or Load.
    /// </summary>
    IReadOnlyList<KeyValuePair<string, Tensor>> StoredTensors();

    /// <summary>
    /// Prepares <paramref name="model"/> for inference from tensors written by <see cref="StoredTensors"/> (copied; the caller
    /// keeps ownership of <paramref name="stored"/>). Every expected tensor must be present with its shape.
    /// </summary>
    /// <exception cref="FormatException">Missing, unexpected or mis-shaped tensors (all listed).</exception>
    void Load(CausalLm model, IReadOnlyDictionary<string, Tensor> stored, PeftContext context);

    // ---- Extension points of the training loop (CausalLmTrainer), with no-op defaults (overridable in PeftMethodBase). ----

    /// <summary>
    /// True when the method trains without gradients: the trainer then creates no optimizer and, at every step, calls
    /// <see cref="GradientFreeStep"/> instead of backward + AdamW (dev evaluation, best-step restore and max steps unchanged).
    /// </summary>
    bool GradientFree => false;

    /// <summary>
    /// True when the method applies the decoupled weight decay itself in <see cref="TransformGradients"/> (see
    /// <see cref="GradientStep.WeightDecayOf"/>); the trainer's AdamW then runs with weight decay 0.
    /// </summary>
    bool HandlesWeightDecay => false;

    /// <summary>
    /// Called once per <see cref="CausalLmTrainer.Train"/> after <see cref="Prepare"/> and before the first step, with the model
    /// in training mode (e.g. Child-Tuning-D's Fisher pass over the training data). Leave no gradients behind that matter:
    /// the trainer zeroes them before every step.
    /// </summary>
    void OnBeforeTraining(PeftTrainingContext context)
    {
    }

    /// <summary>Gradient processing after backward and clipping, before the optimizer step (e.g. Child-Tuning's masks).</summary>
    void TransformGradients(GradientStep step)
    {
    }

    /// <summary>
    /// A penalty on the method's own parameters added to the training loss before backward at every step (e.g.
    /// AdapterFusion's λ·Σ‖I − W_V‖²), or null for none (the default). It shapes the gradients only: the reported training
    /// loss and the dev loss stay the language-model loss, so they compare across methods. Called inside the step's dispose
    /// scope; the trainer disposes the returned tensor.
    /// </summary>
    Tensor? RegularizationLoss() => null;

    /// <summary>
    /// One step of a <see cref="GradientFree"/> method on the training examples <paramref name="batch"/> (indices into the
    /// training set): evaluates losses through <paramref name="context"/> (under no_grad) and updates the method's parameters.
    /// </summary>
    GradientFreeResult GradientFreeStep(PeftTrainingContext context, int step, IReadOnlyList<int> batch) =>
        throw new NotSupportedException($"PEFT method '{Name}' trains with gradients; GradientFreeStep is only for gradient-free methods.");
}

/// <summary>
/// What the method may use while preparing: a seed for its initialisation, the tokenizer (text initialisations) and, for a
/// cell of a later stage, the trained methods of the cells it depends on (<see cref="Dependencies"/>).
/// </summary>
public sealed record PeftContext(long Seed = 0, ITextTokenizer? Tokenizer = null)
{
    public static PeftContext Default { get; } = new();

    /// <summary>
    /// Trained methods of earlier-stage cells this cell depends on, in the order the spec's <c>needs</c> lists them (empty for
    /// a cell without dependencies). Methods that build on them (AdapterFusion, prompt tuning with <c>init: from-cell</c>) read
    /// them in <see cref="IPeftMethod.Prepare"/>; the others ignore them.
    /// </summary>
    public IReadOnlyList<PeftDependency> Dependencies { get; init; } = [];
}

/// <summary>A trained method of an earlier-stage cell: its cell key and the <see cref="PeftCheckpoint"/> folder it was saved to.</summary>
public sealed record PeftDependency(string CellKey, string Directory)
{
    /// <summary>The method's registry name and options, from the folder.</summary>
    public (string Method, IReadOnlyDictionary<string, string> Options) ReadDefinition() => PeftCheckpoint.ReadDefinition(Directory);
}

/// <summary>Parameter counts of a method on a base: trainable during training, and stored by a checkpoint.</summary>
public readonly record struct ParameterCounts(long Trainable, long Stored)
{
    /// <summary>Fraction of <paramref name="baseParameters"/>.</summary>
    public double TrainableFraction(long baseParameters) => (double)Trainable / baseParameters;

    /// <summary>Fraction of <paramref name="baseParameters"/>.</summary>
    public double StoredFraction(long baseParameters) => (double)Stored / baseParameters;
}

/// <summary>One member of a decoding-time logit combination.</summary>
public sealed record WeightedModel(CausalLm Model, double Weight, Gpt2Hooks? Hooks = null);

/// <summary>Conveniences over <see cref="IPeftMethod"/>.</summary>
public static class PeftMethodExtensions
{
    /// <summary><see cref="IPeftMethod.Prepare"/> with seed 0 and no tokenizer.</summary>
    public static IReadOnlyList<Parameter> Prepare(this IPeftMethod method, CausalLm model) =>
        method.Prepare(model, PeftContext.Default);

    /// <summary>Number of virtual tokens the method puts before every sequence (prefix or prompt), 0 if none.</summary>
    public static int VirtualTokens(this IPeftMethod method) => method.Hooks?.VirtualTokens ?? 0;
}
