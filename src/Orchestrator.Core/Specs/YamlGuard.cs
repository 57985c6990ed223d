using System.Globalization;
using YamlDotNet.Core;
using YamlDotNet.Core.Events;

namespace Orchestrator.Core.Specs;

/// <summary>
/// Reads a YAML text as a stream of parser events (no tree, no recursion) and refuses what would crash or hang the tree
/// loader or anything that walks its nodes: an alias inside the node it names (a self-referencing anchor), an alias or a
/// list or mapping used as a mapping key (YamlDotNet hashes keys recursively), nesting deeper than
/// <see cref="SpecLimits.MaxNestingDepth"/>, and more than <see cref="SpecLimits.MaxYamlNodes"/> nodes once aliases are
/// counted as what they stand for (the "billion laughs" alias bomb). Runs before <c>YamlStream.Load</c>.
/// </summary>
internal static class YamlGuard
{
    private sealed class Frame(string? anchor, bool mapping)
    {
        public string? Anchor { get; } = anchor;

        public bool Mapping { get; } = mapping;

        /// <summary>Nodes in this collection so far, itself included, aliases expanded.</summary>
        public long Nodes { get; set; } = 1;

        /// <summary>Children seen so far; in a mapping, even positions are keys.</summary>
        public long Children { get; set; }
    }

    /// <summary>The first problem found, or null when the text is safe to load (it may still be invalid YAML).</summary>
    public static SpecError? Check(string yaml)
    {
        var sizes = new Dictionary<string, long>(StringComparer.Ordinal);
        var open = new List<Frame>();
        long total = 0;
        var parser = new Parser(new StringReader(yaml));
        try
        {
            while (parser.MoveNext())
            {
                var e = parser.Current!;
                var line = (int)e.Start.Line;
                switch (e)
                {
                    case AnchorAlias alias:
                    {
                        var name = alias.Value.Value;
                        if (IsKey(open))
                        {
                            return new SpecError("(yaml)", $"an alias (*{SpecLimits.Quote(name)}) is used as a mapping key; spec keys must be plain names", line);
                        }

                        if (open.Any(f => f.Anchor == name))
                        {
                            return new SpecError("(yaml)", $"the alias *{SpecLimits.Quote(name)} refers to the anchor &{SpecLimits.Quote(name)} it is inside (a self-referencing anchor)", line);
                        }

                        // An unknown anchor is left to the loader, which reports it as invalid YAML.
                        if (Add(open, ref total, sizes.GetValueOrDefault(name, 1)) is { } tooMany)
                        {
                            return tooMany with { Line = line };
                        }

                        break;
                    }

                    case Scalar scalar:
                        if (Add(open, ref total, 1) is { } tooManyScalars)
                        {
                            return tooManyScalars with { Line = line };
                        }

                        if (!scalar.Anchor.IsEmpty)
                        {
                            sizes[scalar.Anchor.Value] = 1;
                        }

                        break;

                    case NodeEvent start and (SequenceStart or MappingStart):
                        if (IsKey(open))
                        {
                            return new SpecError("(yaml)", $"a {(start is MappingStart ? "mapping" : "list")} is used as a mapping key; spec keys must be plain names", line);
                        }

                        if (open.Count >= SpecLimits.MaxNestingDepth)
                        {
                            return new SpecError("(yaml)", $"lists and mappings are nested more than {SpecLimits.MaxNestingDepth} levels deep", line);
                        }

                        if (++total > SpecLimits.MaxYamlNodes)
                        {
                            return TooMany() with { Line = line };
                        }

                        open.Add(new Frame(start.Anchor.IsEmpty ? null : start.Anchor.Value, start is MappingStart));
                        break;

                    case SequenceEnd or MappingEnd:
                    {
                        var done = open[^1];
                        open.RemoveAt(open.Count - 1);
                        if (done.Anchor is not null)
                        {
                            sizes[done.Anchor] = done.Nodes;
                        }

                        // The collection's own nodes were counted in the total as they came; its parent gets them now.
                        if (open.Count > 0)
                        {
                            open[^1].Nodes += done.Nodes;
                            open[^1].Children++;
                        }

                        break;
                    }
                }
            }
        }
        catch (YamlException)
        {
            return null; // the loader reports the syntax error with its position
        }

        return null;
    }

    private static bool IsKey(List<Frame> open) => open.Count > 0 && open[^1].Mapping && open[^1].Children % 2 == 0;

    /// <summary>Counts <paramref name="nodes"/> more nodes in the innermost open collection and in the document.</summary>
    private static SpecError? Add(List<Frame> open, ref long total, long nodes)
    {
        total += nodes;
        if (open.Count > 0)
        {
            open[^1].Nodes += nodes;
            open[^1].Children++;
        }

        return total > SpecLimits.MaxYamlNodes ? TooMany() : null;
    }

    private static SpecError TooMany() => new("(yaml)", string.Create(CultureInfo.InvariantCulture,
        $"the YAML has more than {SpecLimits.MaxYamlNodes:N0} nodes once its aliases are expanded (an alias bomb, or far larger than any spec)"));
}
