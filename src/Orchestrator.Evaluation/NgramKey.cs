using System.Runtime.InteropServices;

namespace Orchestrator.Evaluation;

internal static class NgramKey
{
    /// <summary>
    /// Joins <paramref name="n"/> tokens starting at <paramref name="start"/> with single spaces.
    /// Callers only pass whitespace-free tokens, so the key identifies the n-gram for a fixed n.
    /// </summary>
    public static string Join(List<string> tokens, int start, int n) =>
        string.Join(' ', CollectionsMarshal.AsSpan(tokens).Slice(start, n));
}
