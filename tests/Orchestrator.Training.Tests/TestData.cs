using Orchestrator.Training;
using Orchestrator.Training.Tokenization;
using static TorchSharp.torch;

namespace Orchestrator.Training.Tests;

/// <summary>Small deterministic tasks for the tests.</summary>
internal static class TestData
{
    public static readonly string[] Symbols = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"];

    /// <summary>Sources of <paramref name="length"/> random symbols; the target is the source (copy) or reversed.</summary>
    public static List<TrainingExample> CopyTask(int count, int length, int seed, bool reverse = false)
    {
        var random = new Random(seed);
        var examples = new List<TrainingExample>(count);
        for (int i = 0; i < count; i++)
        {
            string[] symbols = Enumerable.Range(0, length).Select(_ => Symbols[random.Next(Symbols.Length)]).ToArray();
            string source = string.Join(" ", symbols);
            string target = string.Join(" ", reverse ? symbols.Reverse() : symbols);
            examples.Add(new TrainingExample(source, target));
        }

        return examples;
    }

    /// <summary>A word-level tokenizer over the symbols (plus anything in <paramref name="extra"/>).</summary>
    public static WordLevelTokenizer SymbolTokenizer(params string[] extra) =>
        WordLevelTokenizer.Build(Symbols.Concat(extra));

    /// <summary>Same shape, dtype and bit-identical values (torch.equal; TorchSharp's Tensor.equal is elementwise eq).</summary>
    public static bool Identical(Tensor a, Tensor b)
    {
        if (a.dtype != b.dtype || !a.shape.SequenceEqual(b.shape)) return false;
        using var eq = a.eq(b);
        using var all = eq.all();
        return all.item<bool>();
    }
}
