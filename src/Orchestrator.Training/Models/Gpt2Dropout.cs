namespace Orchestrator.Training.Models;

/// <summary>
/// The dropout rate a <see cref="Gpt2Model"/> applies in training mode, shared by its embedding, attention and residual
/// dropout sites. It starts at the checkpoint's rate (<see cref="Gpt2Config.Dropout"/>); a cell's
/// <c>training.base_dropout</c> sets it for its run (<see cref="Gpt2Model.Dropout"/>). A PEFT method's own dropout is
/// separate and unaffected.
/// </summary>
public sealed class Gpt2Dropout(double rate)
{
    private double _rate = Check(rate);

    /// <summary>The rate in [0, 1).</summary>
    public double Rate
    {
        get => _rate;
        set => _rate = Check(value);
    }

    private static double Check(double rate) =>
        rate >= 0 && rate < 1 ? rate : throw new ArgumentOutOfRangeException(nameof(rate), rate, "a dropout rate must be in [0, 1)");
}
