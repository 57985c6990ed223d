namespace Orchestrator.Evaluation.Tests;

/// <summary>
/// Locates the shared data folder: <c>$ORCHESTRATOR_SHARED_DATA</c> if set, otherwise
/// <c>&lt;folder holding Orchestrator.sln&gt;/../shared/data</c>, found by walking up from
/// <see cref="AppContext.BaseDirectory"/>. Missing data is a test failure, never a skip.
/// </summary>
internal static class SharedData
{
    public const string EnvironmentVariable = "ORCHESTRATOR_SHARED_DATA";

    public static string Root()
    {
        var fromEnvironment = Environment.GetEnvironmentVariable(EnvironmentVariable);
        if (!string.IsNullOrWhiteSpace(fromEnvironment))
        {
            if (!Directory.Exists(fromEnvironment))
            {
                Assert.Fail($"{EnvironmentVariable} is set to '{fromEnvironment}', which is not a directory.");
            }

            return Path.GetFullPath(fromEnvironment);
        }

        var start = AppContext.BaseDirectory;
        for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Orchestrator.sln")))
            {
                var candidate = Path.GetFullPath(Path.Combine(dir.FullName, "..", "shared", "data"));
                if (!Directory.Exists(candidate))
                {
                    Assert.Fail(
                        $"Shared data folder not found: expected '{candidate}' (next to the checkout at '{dir.FullName}'). " +
                        $"Set {EnvironmentVariable} to the shared data folder.");
                }

                return candidate;
            }
        }

        Assert.Fail(
            $"Could not find Orchestrator.sln in any parent of '{start}', so the shared data folder is unknown. " +
            $"Set {EnvironmentVariable} to the shared data folder.");
        return string.Empty; // unreachable
    }

    /// <summary>The folder of a named test-vector set under <c>vectors/</c>; fails the test if it is missing.</summary>
    public static string VectorDirectory(string name)
    {
        var dir = Path.Combine(Root(), "vectors", name);
        if (!Directory.Exists(dir))
        {
            Assert.Fail($"Test vectors '{name}' not found at '{dir}'.");
        }

        return dir;
    }

    /// <summary>Reads a file that must exist; fails the test with the path otherwise.</summary>
    public static string ReadText(string directory, string fileName)
    {
        var path = Path.Combine(directory, fileName);
        if (!File.Exists(path))
        {
            Assert.Fail($"Test vector file missing: '{path}'.");
        }

        return File.ReadAllText(path, System.Text.Encoding.UTF8);
    }

    /// <summary>
    /// Lines split on '\n' only (as Python's <c>str.split('\n')</c>), without the empty piece after
    /// the final newline. Empty lines (reference padding) are kept.
    /// </summary>
    public static List<string> ReadLines(string directory, string fileName)
    {
        var text = ReadText(directory, fileName);
        var lines = text.Split('\n').ToList();
        if (lines.Count > 0 && lines[^1].Length == 0)
        {
            lines.RemoveAt(lines.Count - 1);
        }

        return lines;
    }
}
