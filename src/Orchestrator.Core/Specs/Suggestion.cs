namespace Orchestrator.Core.Specs;

/// <summary>"Did you mean …?" for a name that is not among the known ones: the nearest by edit distance, if it is a likely typo.</summary>
public static class Suggestion
{
    /// <summary><c> (did you mean 'x'?)</c>, or an empty string when no known name is near enough.</summary>
    public static string DidYouMean(string name, IEnumerable<string> known) => Reader.DidYouMean(Reader.Closest(name, known));
}
