using System.Text;
using Orchestrator.Core.Hashing;
using Orchestrator.Data.E2E;

namespace Orchestrator.Data.Synthetic;

/// <summary>
/// A deterministic E2E-like dataset: restaurant meaning representations with several fields and several
/// differently worded references each. The same (count, seed) gives the same data on every machine
/// (a fully specified PRNG, no <see cref="Random"/>). Used by the demo and by tests; no download needed.
/// </summary>
public static class SyntheticE2e
{
    public const string Version = "synthetic-e2e/1";

    private static readonly string[] Names =
    [
        "The Golden Fork", "Blue Lantern", "The Green Man", "Riverside Kitchen", "The Copper Kettle", "Olive Grove",
        "The Red Door", "Silver Spoon", "The Old Mill", "Little Saigon", "The Crown", "Harbour Lights", "Maple House",
        "The Jade Garden", "Bella Vista", "The Wandering Goat", "Saffron", "The Black Swan", "Café Lumière", "The Oak Tree",
        "Sakura", "The Anchor", "Spice Route", "The Plough", "Moonlight Diner", "The Fox and Hounds", "Casa Roma",
        "The Blue Bell", "Tandoor Palace", "The Lighthouse",
    ];

    private static readonly string[] EatTypes = ["restaurant", "pub", "coffee shop"];
    private static readonly string[] Foods = ["English", "Italian", "French", "Chinese", "Indian", "Japanese", "fast food"];
    private static readonly string[] Prices = ["cheap", "moderate", "high", "less than £20", "£20-25", "more than £30"];
    private static readonly string[] Ratings = ["low", "average", "high", "1 out of 5", "3 out of 5", "5 out of 5"];
    private static readonly string[] Areas = ["city centre", "riverside"];

    /// <summary>Generates <paramref name="count"/> distinct MRs with 3–6 references each.</summary>
    public static IReadOnlyList<DataEntry> Generate(int count, int seed)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(count);
        var rng = new SplitMix64((ulong)seed * 0x9E3779B97F4A7C15UL + 17);
        var entries = new List<DataEntry>(count);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var attempts = 0;
        while (entries.Count < count)
        {
            if (++attempts > count * 50)
            {
                throw new ArgumentException($"cannot generate {count} distinct meaning representations", nameof(count));
            }

            var fields = RandomFields(rng);
            var mr = E2eFormat.FormatMr(fields);
            if (!seen.Add(mr))
            {
                continue;
            }

            var refCount = 3 + rng.Next(4);
            var refs = new List<string>(refCount);
            var guard = 0;
            while (refs.Count < refCount && guard++ < 40)
            {
                var text = Realise(fields, rng);
                if (!refs.Contains(text))
                {
                    refs.Add(text);
                }
            }

            entries.Add(new DataEntry($"mr{entries.Count:D5}", E2eFormat.Linearise(mr), refs));
        }

        return entries;
    }

    /// <summary>The CSV text (<c>mr,ref</c>) of a generated dataset, in the E2E file format.</summary>
    public static string ToCsv(IEnumerable<(string Mr, IReadOnlyList<string> Refs)> entries)
    {
        var sb = new StringBuilder("mr,ref\n");
        foreach (var (mr, refs) in entries)
        {
            foreach (var r in refs)
            {
                sb.Append('"').Append(mr.Replace("\"", "\"\"")).Append("\",\"").Append(r.Replace("\"", "\"\"")).Append("\"\n");
            }
        }

        return sb.ToString();
    }

    private static List<(string Field, string Value)> RandomFields(SplitMix64 rng)
    {
        var fields = new List<(string, string)> { ("name", rng.Pick(Names)), ("eatType", rng.Pick(EatTypes)) };
        var optional = new List<(string, string[])>
        {
            ("food", Foods), ("priceRange", Prices), ("customer rating", Ratings), ("area", Areas),
            ("familyFriendly", ["yes", "no"]), ("near", Names),
        };
        rng.Shuffle(optional);
        var take = 1 + rng.Next(5);
        foreach (var (field, values) in optional.Take(take).OrderBy(f => FieldOrder(f.Item1)))
        {
            var value = rng.Pick(values);
            if (field == "near" && value == fields[0].Item2)
            {
                value = Names[(Array.IndexOf(Names, value) + 1) % Names.Length];
            }

            fields.Add((field, value));
        }

        return fields;
    }

    private static int FieldOrder(string field) => field switch
    {
        "food" => 0, "priceRange" => 1, "customer rating" => 2, "area" => 3, "familyFriendly" => 4, _ => 5,
    };

    /// <summary>One reference: an opening sentence naming the place, then the other fields in a shuffled order.</summary>
    private static string Realise(IReadOnlyList<(string Field, string Value)> fields, SplitMix64 rng)
    {
        var f = fields.ToDictionary(x => x.Field, x => x.Value);
        var name = f["name"];
        var type = f["eatType"];
        f.TryGetValue("food", out var food);
        f.TryGetValue("area", out var area);
        var foodPart = food is null ? "" : (food == "fast food" ? "fast food " : food + " ");
        var article = (foodPart.Length > 0 ? foodPart : type)[0] is 'a' or 'e' or 'i' or 'o' or 'u' or 'A' or 'E' or 'I' or 'O' or 'U' ? "an" : "a";
        var usedArea = area is not null && rng.Next(2) == 0;
        var areaPart = usedArea ? $" in the {area}" : "";
        var opening = rng.Next(4) switch
        {
            0 => $"{name} is {article} {foodPart}{type}{areaPart}.",
            1 => $"There is {article} {foodPart}{type} called {name}{areaPart}.",
            2 => usedArea ? $"Located in the {area}, {name} is {article} {foodPart}{type}." : $"{name} is {article} {foodPart}{type}.",
            _ => $"{name} is a {type}" + (food is null ? "" : $" serving {food} food") + $"{areaPart}.",
        };

        var clauses = new List<string>();
        foreach (var (field, value) in fields)
        {
            switch (field)
            {
                case "area" when !usedArea:
                    clauses.Add(rng.Next(2) == 0 ? $"It is located in the {value}." : $"You can find it in the {value}.");
                    break;
                case "priceRange":
                    clauses.Add(rng.Next(3) switch
                    {
                        0 => $"It has a {value} price range.",
                        1 => value.Contains('£') ? $"Prices are {value}." : $"Its prices are {value}.",
                        _ => $"The price range is {value}.",
                    });
                    break;
                case "customer rating":
                    clauses.Add(rng.Next(3) switch
                    {
                        0 => $"It has a {value} customer rating.",
                        1 => $"Customers rate it {value}.",
                        _ => $"Its customer rating is {value}.",
                    });
                    break;
                case "familyFriendly":
                    clauses.Add(value == "yes"
                        ? (rng.Next(2) == 0 ? "It is family friendly." : "Children are welcome.")
                        : (rng.Next(2) == 0 ? "It is not family friendly." : "It is not suitable for children."));
                    break;
                case "near":
                    clauses.Add(rng.Next(2) == 0 ? $"It is near {value}." : $"You will find it near {value}.");
                    break;
            }
        }

        rng.Shuffle(clauses);
        return string.Join(" ", clauses.Prepend(opening));
    }
}
