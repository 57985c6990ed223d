namespace Orchestrator.Core.Tests;

/// <summary>
/// Locates the shared data folder: <c>$ORCHESTRATOR_SHARED_DATA</c> if set, otherwise
/// <c>&lt;folder holding Orchestrator.sln&gt;/../shared/data</c>. Missing data is a test failure, never a skip.
/// </summary>
internal static class SharedDataPaths
{
    public const string EnvironmentVariable = "ORCHESTRATOR_SHARED_DATA";

    public static string Root()
    {
        var fromEnvironment = Environment.GetEnvironmentVariable(EnvironmentVariable);
        if (!string.IsNullOrWhiteSpace(fromEnvironment))
        {
            Assert.True(Directory.Exists(fromEnvironment), $"{EnvironmentVariable} is set to '{fromEnvironment}', which is not a directory.");
            return Path.GetFullPath(fromEnvironment);
        }

        var candidate = Path.GetFullPath(Path.Combine(SpecParserTests.RepoRoot(), "..", "shared", "data"));
        Assert.True(Directory.Exists(candidate),
            $"Shared data folder not found: expected '{candidate}' next to the checkout. Set {EnvironmentVariable} to the shared data folder.");
        return candidate;
    }

    /// <summary>A file or folder under the shared data folder; fails the test with the path if it is missing.</summary>
    public static string Get(string relative)
    {
        var path = Path.Combine(Root(), relative);
        Assert.True(File.Exists(path) || Directory.Exists(path), $"Shared data missing: '{path}'.");
        return path;
    }
}

/// <summary>A temporary folder for written fixtures, deleted on dispose.</summary>
internal sealed class TempFolder : IDisposable
{
    public TempFolder() => Path = Directory.CreateTempSubdirectory("orch-data-").FullName;

    public string Path { get; }

    public string Write(string name, string text)
    {
        var file = System.IO.Path.Combine(Path, name);
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(file)!);
        File.WriteAllText(file, text, new System.Text.UTF8Encoding(false));
        return file;
    }

    public string WriteBytes(string name, byte[] bytes)
    {
        var file = System.IO.Path.Combine(Path, name);
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(file)!);
        File.WriteAllBytes(file, bytes);
        return file;
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
