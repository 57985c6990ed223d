using Xunit;

namespace Orchestrator.TestKit;

/// <summary>
/// The data committed with the tests under <c>tests/data</c> (small excerpts of E2E, WebNLG 2017 and DART with their
/// licences, and the e2e_dev200 metric vectors). Found from the checkout alone, so the tests need nothing beside it.
/// </summary>
public static class TestData
{
    /// <summary><c>&lt;checkout&gt;/tests/data</c>.</summary>
    public static string Root() => Path.Combine(RepoRoot(), "tests", "data");

    /// <summary>A file or folder under <c>tests/data</c>; fails the test with the path if it is missing.</summary>
    public static string Get(string relative)
    {
        var path = Path.Combine(Root(), relative);
        Assert.True(File.Exists(path) || Directory.Exists(path), $"Test data missing from the checkout: '{path}'.");
        return path;
    }

    /// <summary>Reads a file that must exist; fails the test with the path otherwise.</summary>
    public static string ReadText(string directory, string fileName)
    {
        var path = Path.Combine(directory, fileName);
        Assert.True(File.Exists(path), $"Test data file missing: '{path}'.");
        return File.ReadAllText(path, System.Text.Encoding.UTF8);
    }

    /// <summary>
    /// Lines split on '\n' only (as Python's <c>str.split('\n')</c>), without the empty piece after
    /// the final newline. Empty lines (reference padding) are kept.
    /// </summary>
    public static List<string> ReadLines(string directory, string fileName)
    {
        var lines = ReadText(directory, fileName).Split('\n').ToList();
        if (lines.Count > 0 && lines[^1].Length == 0)
        {
            lines.RemoveAt(lines.Count - 1);
        }

        return lines;
    }

    /// <summary>
    /// Writes a small JSONL dataset of <paramref name="count"/> examples ("name : Place i | food : dish i%7" → "Place i serves
    /// dish i%7 ."), with a <c>topic</c> field when <paramref name="topic"/> is given: the input of sweeps that train for real
    /// in a few seconds.
    /// </summary>
    public static void WritePlaces(string path, int count, Func<int, string>? topic = null)
    {
        var lines = Enumerable.Range(0, count).Select(i =>
        {
            var example = new Dictionary<string, object>
            {
                ["id"] = $"ex{i}",
                ["source"] = $"name : Place {i} | food : dish {i % 7}",
                ["references"] = new[] { $"Place {i} serves dish {i % 7} ." },
            };
            if (topic is not null)
            {
                example["topic"] = topic(i);
            }

            return System.Text.Json.JsonSerializer.Serialize(example);
        });
        File.WriteAllLines(path, lines);
    }

    /// <summary>The checkout's root: the nearest folder above the test binaries that holds Orchestrator.sln.</summary>
    public static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Orchestrator.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("repository root (Orchestrator.sln) not found above " + AppContext.BaseDirectory);
    }
}
