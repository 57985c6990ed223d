using System.Text.Json;
using Orchestrator.TestKit;

namespace Orchestrator.Evaluation.Tests;

/// <summary>The e2e_dev200 vectors: hypotheses, 38 padded reference streams and the reference numbers.</summary>
internal sealed class E2eDev200Vectors
{
    private static readonly Lazy<E2eDev200Vectors> Instance = new(Load, LazyThreadSafetyMode.ExecutionAndPublication);

    private E2eDev200Vectors(string directory, JsonElement expected, List<string> hypotheses, List<List<string>> streams)
    {
        Directory = directory;
        Expected = expected;
        Hypotheses = hypotheses;
        Streams = streams;
        Groups = Enumerable.Range(0, hypotheses.Count)
            .Select(i => streams.Select(s => s[i]).Where(r => r.Length > 0).ToList())
            .ToList();
    }

    public static E2eDev200Vectors Value => Instance.Value;

    public string Directory { get; }

    public JsonElement Expected { get; }

    public List<string> Hypotheses { get; }

    /// <summary>ref0..refN as read (padded with empty lines), each as long as <see cref="Hypotheses"/>.</summary>
    public List<List<string>> Streams { get; }

    /// <summary>The non-empty references of each segment, in file order.</summary>
    public List<List<string>> Groups { get; }

    public IReadOnlyList<IReadOnlyList<string>> StreamsView => Streams;

    public IReadOnlyList<IReadOnlyList<string>> GroupsView => Groups;

    private static E2eDev200Vectors Load()
    {
        var dir = TestData.Get("vectors/e2e_dev200");
        var expected = JsonDocument.Parse(TestData.ReadText(dir, "expected.json")).RootElement.Clone();
        var nSegments = expected.GetProperty("n_segments").GetInt32();
        var nRefFiles = expected.GetProperty("n_ref_files").GetInt32();

        var hypotheses = TestData.ReadLines(dir, "hyp.txt");
        Assert.True(hypotheses.Count == nSegments, $"hyp.txt has {hypotheses.Count} lines, expected.json says {nSegments}.");

        var streams = new List<List<string>>();
        for (var k = 0; k < nRefFiles; k++)
        {
            var stream = TestData.ReadLines(dir, $"ref{k}.txt");
            Assert.True(stream.Count == nSegments, $"ref{k}.txt has {stream.Count} lines, expected {nSegments}.");
            streams.Add(stream);
        }

        return new E2eDev200Vectors(dir, expected, hypotheses, streams);
    }
}
