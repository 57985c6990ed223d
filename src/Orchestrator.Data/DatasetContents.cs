namespace Orchestrator.Data;

/// <summary>
/// One part of a dataset as read from disk: <c>all</c> (a single file, split into training pool and evaluation
/// set by hash), or <c>train</c> and <c>test</c> (separate files; <c>dev</c> is read for statistics only).
/// Training parts hold training inputs (WebNLG: only <c>comment="good"</c> lexicalisations); test parts hold every reference.
/// </summary>
public sealed record DatasetPart(string Name, IReadOnlyList<DataEntry> Entries)
{
    public const string All = "all";
    public const string Train = "train";
    public const string Dev = "dev";
    public const string Test = "test";
}

/// <summary>Everything read from a dataset's files, before splitting.</summary>
/// <param name="Kind">Reader name.</param>
/// <param name="ContentHash">Hash of the files read (the file's SHA-256 for a single file).</param>
/// <param name="Parts">The parts (see <see cref="DatasetPart"/>).</param>
/// <param name="Notes">Facts worth reporting (dropped entries, overlaps), for <c>data stats</c>.</param>
public sealed record DatasetContents(string Kind, string ContentHash, IReadOnlyList<DatasetPart> Parts, IReadOnlyList<string> Notes)
{
    public DatasetPart? Part(string name) => Parts.FirstOrDefault(p => p.Name == name);

    /// <summary>True when the data came as one file that is split by hash.</summary>
    public bool IsSingleFile => Part(DatasetPart.All) is not null;
}
