using Orchestrator.Training.Peft;

namespace Orchestrator.Training.Packing;

/// <summary>
/// A method whose trials can be trained together on one frozen base (<see cref="PackedTrainer"/>): it never changes base
/// weights, and its hooks only add virtual tokens (<see cref="Models.Gpt2Hooks.Prefix"/> or
/// <see cref="Models.Gpt2Hooks.Prompt"/>, computed for the requested number of rows) or change projections row by row
/// (<see cref="Models.Gpt2RowwiseHooks"/>). Every row of a batch then depends on its own trial's parameters only.
/// </summary>
public interface IPackableMethod : IPeftMethod
{
    /// <summary>
    /// False when this instance's options rule packing out although the method packs in general (prompt tuning with
    /// <c>init: from-cell</c> starts from a dependency's trained prompt, and a pack passes no dependencies): such a trial is
    /// trained alone.
    /// </summary>
    bool Packable => true;

    /// <summary>
    /// Draws per-token dropout masks for sequences of <paramref name="length"/> positions (the trial's longest training
    /// sequence) and cuts them to the batch, so the trial's random stream does not depend on how far its rows were padded
    /// (alone or in a pack). Methods without per-token dropout ignore it.
    /// </summary>
    void PinDropoutLength(int length)
    {
    }
}
