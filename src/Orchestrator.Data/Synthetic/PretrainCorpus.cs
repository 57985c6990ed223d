using System.Text;
using Orchestrator.Core.Hashing;
using Orchestrator.Core.Specs;

namespace Orchestrator.Data.Synthetic;

/// <summary>
/// Text for pretraining small bases. <c>synthetic</c> is a deterministic generator of generic restaurant and café text:
/// first-person reviews (visits, dishes, service, prices, atmosphere, advice) and third-person guide entries (cuisine,
/// prices, ratings, families, neighbours, menu, opening hours), so a base learns English word order and the domain's
/// vocabulary. It is not evaluation data: its venues, sentence patterns and content are its own — it never
/// produces an E2E meaning representation or a <see cref="SyntheticE2e"/> reference, and shares none of its venue names.
/// A file corpus is any local UTF-8 text (a file, or every file of a folder in ordinal path order), one document per line.
/// </summary>
public static class PretrainCorpus
{
    public const string Version = "pretrain-corpus/2";

    /// <summary>Resolves a spec's corpus to (kind, absolute path or null, content hash).</summary>
    /// <exception cref="DatasetException">The file or folder does not exist or holds no text.</exception>
    public static (string Kind, string? Path, string Hash) Resolve(string corpus, string baseDirectory, int documents, int seed)
    {
        ArgumentNullException.ThrowIfNull(corpus);
        if (corpus == PretrainSpec.SyntheticCorpus)
        {
            return (PretrainSpec.SyntheticCorpus, null, ContentHash.Of($"{Version}|documents={documents}|seed={seed}"));
        }

        var path = Path.GetFullPath(Path.Combine(baseDirectory, corpus));
        if (File.Exists(path))
        {
            return ("text", path, ContentHash.OfFile(path));
        }

        if (Directory.Exists(path))
        {
            if (!Directory.EnumerateFiles(path, "*", SearchOption.AllDirectories).Any())
            {
                throw new DatasetException($"model.pretrain.corpus: the folder {path} has no files");
            }

            return ("text", path, ContentHash.OfDirectory(path));
        }

        throw new DatasetException($"model.pretrain.corpus: expected 'synthetic' or a text file or folder; not found: {path}");
    }

    /// <summary>The documents of a resolved corpus; checks that a file corpus still has the content it was resolved with.</summary>
    public static IReadOnlyList<string> Load(string kind, string? path, string hash, int documents, int seed)
    {
        if (kind == PretrainSpec.SyntheticCorpus)
        {
            return Generate(documents, seed);
        }

        if (path is null)
        {
            throw new DatasetException("a text corpus without a path");
        }

        string actual = File.Exists(path) ? ContentHash.OfFile(path)
            : Directory.Exists(path) ? ContentHash.OfDirectory(path)
            : throw new DatasetException($"pretraining corpus not found on this machine: {path}");
        if (actual != hash)
        {
            throw new DatasetException($"pretraining corpus {path} changed since it was resolved (content hash {actual[..12]}, expected {hash[..12]})");
        }

        var files = File.Exists(path) ? [path] : Directory.EnumerateFiles(path, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToArray();
        var lines = new List<string>();
        foreach (var file in files)
        {
            foreach (var line in File.ReadLines(file, Encoding.UTF8))
            {
                var text = line.Trim();
                if (text.Length > 0)
                {
                    lines.Add(text);
                }
            }
        }

        if (lines.Count == 0)
        {
            throw new DatasetException($"pretraining corpus {path} has no text");
        }

        return lines;
    }

    /// <summary>
    /// <paramref name="count"/> documents, a pure function of (count, seed): first-person reviews and guide entries of 2–6
    /// sentences, and (a third) listings — a record such as <c>venue : Luigi's | kind : pub | cuisine : Italian</c>
    /// followed by a description of those facts.
    /// </summary>
    public static IReadOnlyList<string> Generate(int count, int seed)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(count);
        var rng = new SplitMix64(((ulong)(uint)seed << 20) ^ 0x5DEECE66DUL);
        var documents = new List<string>(count);
        var sentences = new List<string>(6);
        for (int i = 0; i < count; i++)
        {
            var visit = Visit.Random(rng);
            sentences.Clear();
            if (rng.Next(3) == 0)
            {
                // A listing: a fact record followed by its description (generic data-to-text, with keys and venue names
                // that differ from the synthetic E2E data's).
                documents.Add(Listing(rng, visit));
                continue;
            }

            if (rng.Next(2) == 0)
            {
                // A first-person review.
                sentences.Add(Opening(rng, visit));
                int more = 1 + rng.Next(5);
                for (int j = 0; j < more; j++)
                {
                    sentences.Add(Detail(rng, visit));
                }

                if (rng.Next(3) == 0)
                {
                    sentences.Add(Verdict(rng, visit));
                }
            }
            else
            {
                // A guide entry in the third person.
                sentences.Add(GuideOpening(rng, visit));
                var details = Enumerable.Range(0, GuideDetails).ToList();
                rng.Shuffle(details);
                foreach (int kind in details.Take(1 + rng.Next(4)))
                {
                    sentences.Add(GuideDetail(rng, visit, kind));
                }
            }

            documents.Add(string.Join(" ", sentences));
        }

        return documents;
    }

    private static readonly string[] Venues =
    [
        "Luigi's", "The Brass Monkey", "Golden Dragon", "Rosie's Kitchen", "The Hungry Heron", "Bombay Nights", "Le Petit Coin",
        "The Tipsy Parrot", "Noodle Bar 88", "Harvest Table", "The Rusty Anchor", "Kyoto Garden", "Mama Rosa", "The Blue Heron",
        "Corner Bistro", "The Salt House", "Spice Garden", "The Daily Grind", "Bean There", "The Village Inn", "Ocean Breeze",
        "Taco Loco", "The Garden Room", "Sunrise Café", "The Windmill", "Pho Saigon", "The King's Head", "Dolce Vita",
        "Burger Barn", "The Mustard Seed", "Chez Marcel", "The Olive Branch", "Tokyo Express", "The Wheatsheaf", "Curry Corner",
    ];

    private static readonly (string Type, string[] Dishes)[] Kinds =
    [
        ("Italian", ["pizza", "lasagne", "risotto", "carbonara", "tiramisu", "garlic bread", "pasta"]),
        ("French", ["onion soup", "steak frites", "crème brûlée", "croissants", "duck confit", "quiche"]),
        ("Chinese", ["dumplings", "fried rice", "sweet and sour chicken", "spring rolls", "noodles", "duck pancakes"]),
        ("Indian", ["curry", "naan", "biryani", "samosas", "tikka masala", "dal", "mango lassi"]),
        ("Japanese", ["sushi", "ramen", "tempura", "miso soup", "teriyaki salmon", "gyoza"]),
        ("English", ["fish and chips", "roast beef", "pie and mash", "full breakfast", "sausages", "sticky toffee pudding"]),
        ("fast food", ["burgers", "fries", "milkshakes", "chicken wings", "hot dogs", "onion rings"]),
        ("Mexican", ["tacos", "burritos", "nachos", "quesadillas", "guacamole"]),
        ("Thai", ["green curry", "pad thai", "spring rolls", "tom yum soup"]),
    ];

    private static readonly string[] PlaceTypes = ["restaurant", "pub", "coffee shop", "café", "bistro", "diner", "bar", "tea room"];
    private static readonly string[] Companions = ["my sister", "a friend", "my parents", "some colleagues", "my partner", "the kids", "my grandmother", "two friends from work"];
    private static readonly string[] Times = ["last Friday", "on Sunday afternoon", "for lunch yesterday", "last weekend", "on a rainy Tuesday", "after work", "for breakfast", "on my birthday", "last month"];
    private static readonly string[] Places = ["near the station", "in the city centre", "by the river", "on the high street", "next to the cinema", "in the old town", "near the university", "at the edge of the park", "on the riverside", "behind the market"];
    private static readonly string[] Good = ["delicious", "excellent", "fresh", "tasty", "lovely", "perfectly cooked", "generous", "wonderful"];
    private static readonly string[] Bad = ["cold", "bland", "too salty", "overcooked", "disappointing", "a bit dry", "small"];
    private static readonly string[] Staff = ["the waiter", "the staff", "the owner", "our server", "the barman", "the waitress"];
    private static readonly string[] StaffGood = ["friendly", "helpful", "very kind", "quick", "attentive", "cheerful"];
    private static readonly string[] StaffBad = ["slow", "rude", "distracted", "in a hurry", "hard to find"];
    private static readonly string[] Atmosphere = ["cosy", "noisy", "quiet", "bright", "crowded", "relaxed", "modern", "old-fashioned", "charming"];
    private static readonly string[] Prices = ["cheap", "reasonable", "fair", "expensive", "a little high", "very low"];
    private static readonly string[] Amounts = ["ten pounds", "fifteen pounds", "twenty pounds", "about thirty pounds", "less than twenty pounds", "forty pounds"];
    private static readonly string[] Scores = ["one", "two", "three", "four", "five"];

    private sealed record Visit(string Venue, string Type, string Cuisine, string[] Dishes, string Place, bool Liked, bool Kids)
    {
        public static Visit Random(SplitMix64 rng)
        {
            var (cuisine, dishes) = Kinds[rng.Next(Kinds.Length)];
            var type = PlaceTypes[rng.Next(PlaceTypes.Length)];
            return new Visit(rng.Pick(Venues), type, cuisine, dishes, rng.Pick(Places), rng.Next(4) != 0, rng.Next(2) == 0);
        }
    }

    private static string Opening(SplitMix64 rng, Visit v) => rng.Next(6) switch
    {
        0 => $"I went to {v.Venue} {rng.Pick(Times)} with {rng.Pick(Companions)}.",
        1 => $"We had dinner at a small {v.Cuisine} {v.Type} {v.Place} {rng.Pick(Times)}.",
        2 => $"{v.Venue} is a {rng.Pick(Atmosphere)} little {v.Type} {v.Place}.",
        3 => $"My first visit to {v.Venue} was {rng.Pick(Times)}, and I went with {rng.Pick(Companions)}.",
        4 => $"If you like {v.Cuisine} food, there is a {v.Type} {v.Place} called {v.Venue}.",
        _ => $"A friend told me about {v.Venue}, so we tried it {rng.Pick(Times)}.",
    };

    private static string Detail(SplitMix64 rng, Visit v)
    {
        string dish = rng.Pick(v.Dishes);
        string other = rng.Pick(v.Dishes);
        return rng.Next(12) switch
        {
            0 => v.Liked ? $"The {dish} was {rng.Pick(Good)}." : $"The {dish} was {rng.Pick(Bad)}.",
            1 => $"I ordered the {dish} and {(rng.Next(2) == 0 ? "my companion" : "my friend")} had the {other}.",
            2 => v.Liked ? $"{Cap(rng.Pick(Staff))} was {rng.Pick(StaffGood)} and the food arrived quickly." : $"{Cap(rng.Pick(Staff))} was {rng.Pick(StaffBad)}, and we waited a long time.",
            3 => $"Prices are {rng.Pick(Prices)}: we paid {rng.Pick(Amounts)} each.",
            4 => $"The room is {rng.Pick(Atmosphere)}, with {(rng.Next(2) == 0 ? "wooden tables" : "big windows")} and {(rng.Next(2) == 0 ? "soft music" : "a view of the street")}.",
            5 => v.Kids ? "Children are welcome, and there is a menu for them." : "It is not really a place for children.",
            6 => $"They serve {v.Cuisine} dishes such as {dish} and {other}.",
            7 => $"It can get busy at the weekend, so book a table{(rng.Next(2) == 0 ? " early" : "")}.",
            8 => $"The coffee was {(v.Liked ? rng.Pick(Good) : rng.Pick(Bad))}, and the cakes looked {rng.Pick(Good)}.",
            9 => $"It is {v.Place}, a short walk from {(rng.Next(2) == 0 ? "the bus stop" : "the main square")}.",
            10 => $"Most people there were {(rng.Next(2) == 0 ? "families" : rng.Next(2) == 0 ? "students" : "couples")} having {(rng.Next(2) == 0 ? "lunch" : "a drink")}.",
            _ => v.Liked ? $"The portions were {rng.Pick(Good)} for the price." : $"The portions were {rng.Pick(Bad)} for the price.",
        };
    }

    private static string Verdict(SplitMix64 rng, Visit v)
    {
        string score = v.Liked ? Scores[2 + rng.Next(3)] : Scores[rng.Next(3)];
        return rng.Next(4) switch
        {
            0 => $"I would give it {score} stars out of five.",
            1 => v.Liked ? "We will definitely come back." : "I do not think we will go again.",
            2 => $"Overall, {(v.Liked ? "a good choice" : "not worth the money")} if you are {v.Place}.",
            _ => $"My rating: {score} out of five.",
        };
    }

    private const int GuideDetails = 8;
    private static readonly string[] GuidePrices = ["under £10", "less than £20", "between £20 and £25", "around £30", "more than £30", "about £15"];
    private static readonly string[] GuideLevels = ["low", "moderate", "fair", "high", "average"];
    private static readonly string[] Neighbours = ["next to", "opposite", "close to", "a few doors from", "just round the corner from"];

    private static string CuisineWord(Visit v) => v.Cuisine == "fast food" ? "fast food" : v.Cuisine;

    private static string GuideOpening(SplitMix64 rng, Visit v) => rng.Next(5) switch
    {
        0 => $"{v.Venue} is a {rng.Pick(Atmosphere)} {CuisineWord(v)} {v.Type} {v.Place}.",
        1 => $"Found {v.Place}, {v.Venue} serves {CuisineWord(v)} food in a {rng.Pick(Atmosphere)} setting.",
        2 => $"{v.Venue}, a {v.Type} {v.Place}, specialises in {CuisineWord(v)} cooking.",
        3 => $"Locals recommend {v.Venue} for {CuisineWord(v)} food.",
        _ => $"Open every day, {v.Venue} is a {v.Type} offering {CuisineWord(v)} dishes.",
    };

    private static string GuideDetail(SplitMix64 rng, Visit v, int kind) => kind switch
    {
        0 => rng.Next(2) == 0 ? $"Main courses cost {rng.Pick(GuidePrices)}." : $"Expect to pay {rng.Pick(GuidePrices)} per person.",
        1 => rng.Next(2) == 0 ? $"Prices here are considered {rng.Pick(GuideLevels)}." : $"Its price level is rated {rng.Pick(GuideLevels)} by visitors.",
        2 => rng.Next(2) == 0 ? $"Diners give it {Scores.Length - rng.Next(Scores.Length)} out of 5." : $"Reviewers score it {rng.Pick(GuideLevels)} overall.",
        3 => v.Kids ? (rng.Next(2) == 0 ? "The place is family friendly, with high chairs for babies." : "Kids eat for free on Sundays.")
                    : (rng.Next(2) == 0 ? "Families may prefer somewhere quieter." : "The bar area is for adults only."),
        4 => $"The {v.Type} is {rng.Pick(Neighbours)} {rng.Pick(Venues)}.",
        5 => $"The menu includes {rng.Pick(v.Dishes)} and {rng.Pick(v.Dishes)}.",
        6 => $"It opens at {7 + rng.Next(5)} in the morning and closes at {9 + rng.Next(3)} at night.",
        _ => rng.Next(2) == 0 ? $"There is seating outside {(rng.Next(2) == 0 ? "by the water" : "in a small garden")}." : "Booking is not needed on weekdays.",
    };

    private static string Listing(SplitMix64 rng, Visit v)
    {
        var keys = new List<int> { 0, 1, 2, 3, 4, 5, 6 };
        rng.Shuffle(keys);
        var chosen = keys.Take(2 + rng.Next(4)).Order().ToList();
        var fields = new List<string> { $"venue : {v.Venue}" };
        string level = rng.Pick(GuideLevels), score = rng.Pick(Scores), near = rng.Pick(Venues);
        bool has(int k) => chosen.Contains(k);
        if (has(0)) fields.Add($"kind : {v.Type}");
        if (has(1)) fields.Add($"cuisine : {CuisineWord(v)}");
        if (has(2)) fields.Add($"location : {v.Place}");
        if (has(3)) fields.Add($"prices : {level}");
        if (has(4)) fields.Add($"rating : {score} out of five");
        if (has(5)) fields.Add($"children : {(v.Kids ? "yes" : "no")}");
        if (has(6)) fields.Add($"nearby : {near}");

        var first = $"{v.Venue} is a" + (has(1) ? $" {CuisineWord(v)}" : "") + (has(0) ? $" {v.Type}" : " place") + (has(2) ? $" {v.Place}" : "")
            + (has(6) ? $" {rng.Pick(Neighbours)} {near}" : "") + ".";
        var text = new List<string> { first };
        if (has(3)) text.Add(rng.Next(2) == 0 ? $"The guide lists its prices as {level}." : $"Prices there count as {level}.");
        if (has(4)) text.Add(rng.Next(2) == 0 ? $"Visitors rate it {score} out of five." : $"Guests give the place {score} out of five.");
        if (has(5)) text.Add(v.Kids ? (rng.Next(2) == 0 ? "Families with small children go there often." : "The guide says it welcomes children.") : (rng.Next(2) == 0 ? "The guide says it is meant for adults." : "Families with children usually go elsewhere."));
        return string.Join(" | ", fields) + " " + string.Join(" ", text);
    }

    private static string Cap(string s) => char.ToUpperInvariant(s[0]) + s[1..];
}
