using Xunit;

namespace Orchestrator.TestKit;

/// <summary>
/// Locates the shared data folder: <c>$ORCHESTRATOR_SHARED_DATA</c> if set, otherwise
/// <c>&lt;folder holding Orchestrator.sln&gt;/../shared/data</c>. Missing data is a test failure, never a skip.
/// </summary>
public static class SharedDataPaths
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

        var candidate = Path.GetFullPath(Path.Combine(RepoRoot(), "..", "shared", "data"));
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
