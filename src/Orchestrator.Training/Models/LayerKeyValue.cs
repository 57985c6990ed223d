using static TorchSharp.torch;

namespace Orchestrator.Training.Models;

/// <summary>
/// Keys and values that one attention layer prepends to those of the current tokens, each [B, Heads, P, HeadDim]
/// (a prefix for prefix-tuning, or the cache of earlier steps when decoding). Every query sees all P entries;
/// the current tokens stay causal among themselves.
/// </summary>
public sealed record LayerKeyValue(Tensor Key, Tensor Value)
{
    /// <summary>Number of prepended positions (P).</summary>
    public long Length => Key.shape[2];
}
