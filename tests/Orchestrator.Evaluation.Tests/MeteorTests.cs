namespace Orchestrator.Evaluation.Tests;

/// <summary>
/// METEOR against <c>meteor-1.5.jar</c> built from the METEOR 1.5 source (cmu-mtlab/meteor, 57a9ec5; the paraphrase
/// tables are not in that snapshot, which is why only exact and stem are implemented), run as
/// <c>java -jar meteor-1.5.jar hyp refs -l en -norm -m "exact stem" -r N</c> with the references of each segment on N
/// consecutive lines (padding lines empty). Normaliser outputs come from its <c>edu.cmu.meteor.util.Normalizer</c>
/// (<c>main</c>, arguments <c>english true</c>).
/// </summary>
public sealed class MeteorTests
{
    private const double Tolerance = 1e-9;

    private static E2eDev200Vectors V => E2eDev200Vectors.Value;

    [Fact]
    public void Exact_and_stem_stages_on_the_vectors()
    {
        // "Final score: 0.44285950525799317"; segments 1–5: 0.48177475245211593, 0.45708635204552756,
        // 0.36025820487451654, 0.3251969857204807, 0.538459624710932. All 200 segments were compared.
        var meteor = new Meteor();
        Assert.Equal(0.44285950525799317, meteor.CorpusStatistics(V.Hypotheses, V.GroupsView).Score, Tolerance);
        double[] segments = [0.48177475245211593, 0.45708635204552756, 0.36025820487451654, 0.3251969857204807, 0.538459624710932];
        for (var i = 0; i < segments.Length; i++)
        {
            Assert.Equal(segments[i], meteor.Segment(V.Hypotheses[i], V.Groups[i]).Score, Tolerance);
        }
    }

    [Fact]
    public void Exact_stage_only_on_the_vectors()
    {
        // -m "exact": "Final score: 0.4365523225803527"; segment 4 drops from 0.3251969857204807 to 0.3003291655757046.
        var meteor = new Meteor(new MeteorOptions { Modules = [MeteorModule.Exact], ModuleWeights = [1.0] });
        Assert.Equal(0.4365523225803527, meteor.CorpusStatistics(V.Hypotheses, V.GroupsView).Score, Tolerance);
        Assert.Equal(0.3003291655757046, meteor.Segment(V.Hypotheses[3], V.Groups[3]).Score, Tolerance);
    }

    [Fact]
    public void Edge_cases_match_the_jar()
    {
        // EdgeCorpus with -r 2: segments 0.0, 0.39395436043078397, 0.4088646448068389, 0.6708422081756893, 1.0;
        // "Final score: 0.6448799624592255".
        var meteor = new Meteor();
        double[] segments = [0.0, 0.39395436043078397, 0.4088646448068389, 0.6708422081756893, 1.0];
        for (var i = 0; i < segments.Length; i++)
        {
            Assert.Equal(segments[i], meteor.Segment(EdgeCorpus.Hypotheses[i], EdgeCorpus.References[i]).Score, Tolerance);
        }

        Assert.Equal(0.6448799624592255, Meteor.Corpus(EdgeCorpus.Hypotheses, EdgeCorpus.References), Tolerance);
        Assert.Equal(0.6448799624592255, Meteor.Corpus(EdgeCorpus.Hypotheses, EdgeCorpus.PaddedReferences), Tolerance);
    }

    [Fact]
    public void Hand_computed_fragmentation_and_stem_weighting()
    {
        // "dog cat" vs "cat dog": two exact content matches, P = R = 1, but 2 chunks: frag = 2/((2+2)/2) = 1,
        // penalty γ·1^β = 0.6 → 0.4. "dogs barked" vs "dog barks": two stem matches (weight 0.6): P = R = 0.6,
        // one chunk covering everything, so METEOR's perfect-alignment rule sets frag = 0 → 0.6.
        // Corpus: matches weighted (2·1.0 + 2·0.6)·δ / (4·δ) = 0.8 = P = R; chunks 2 (the perfect segment adds none)
        // over (4 + 4)/2 matches → frag 0.5 → 0.8·(1 − 0.6·0.5^0.2). The jar prints 0.4, 0.6 and 0.38213572961786046.
        var meteor = new Meteor();
        Assert.Equal(0.4, meteor.Segment("dog cat", ["cat dog"]).Score, 1e-12);
        Assert.Equal(0.6, meteor.Segment("dogs barked", ["dog barks"]).Score, 1e-12);
        var expected = 0.8 * (1 - (0.6 * Math.Pow(0.5, 0.2)));
        Assert.Equal(expected, Meteor.Corpus(["dog cat", "dogs barked"], [["cat dog"], ["dog barks"]]), 1e-12);
        Assert.Equal(0.38213572961786046, expected, 1e-12);
    }

    [Fact]
    public void The_best_reference_is_chosen_per_segment()
    {
        var meteor = new Meteor();
        Assert.Equal(1.0, meteor.Segment("cat dog", ["dog cat", "cat dog"]).Score, 1e-12);
        Assert.Equal(0.4, meteor.Segment("cat dog", ["dog cat", "bird"]).Score, 1e-12);
    }

    [Theory]
    [InlineData("There is a place in the city centre, Alimentum, that is not family-friendly.",
        "There is a place in the city centre , Alimentum , that is not family friendly .")]
    [InlineData("name[Alimentum], area[city centre], familyFriendly[no]", "name [ Alimentum ] , area [ city centre ] , familyFriendly [ no ]")]
    [InlineData("Aenir | followedBy | Above_the_Veil", "Aenir | followedBy | Above _ the _ Veil")]
    [InlineData("U.S.-based firm", "US based firm")]
    [InlineData("Mr. Smith went to Washington.", "Mr. Smith went to Washington .")]
    [InlineData("It's 5 p.m. now...", "It 's 5 pm now ...")]
    [InlineData("He said ''hello'' and \u201cbye\u201d \u2014 ok", "He said \" hello \" and \" bye \" \u2014 ok")]
    [InlineData("rock'n'roll isn't it?", "rock 'n'roll isn 't it ?")]
    [InlineData("the 1990's were 'great'", "the 1990 's were ' great '")]
    [InlineData("Dr. No. 5 vs. Inc. Apple", "Dr. No. 5 vs. Inc . Apple")]
    [InlineData("e.g. this i.e. that", "eg this ie that")]
    [InlineData("\u00a320-25, 3.5 and 1,000 or a,b", "\u00a3 20 25 , 3.5 and 1,000 or a , b")]
    [InlineData("A... b.... c.", "A ... b .... c .")]
    [InlineData("\u03a9 \u03a3 \ud83d\ude00 emoji\ud83d\ude00x", "\u03a9 \u03a3 \ud83d\ude00 emoji \ud83d\ude00 x")]
    [InlineData("tab\tsep  multiple   spaces\u00a0nbsp", "tab sep multiple spaces nbsp")]
    [InlineData("'quoted' `back` \u2018single\u2019", "' quoted ' ' back ' ' single '")]
    [InlineData("end with abbreviation Mr.", "end with abbreviation Mr.")]
    [InlineData("a--b -- c", "a b - c")]
    [InlineData("hello.world", "hello.world")]
    [InlineData("", "")]
    public void Normalises_like_the_java_normalizer(string input, string expected) =>
        Assert.Equal(expected, MeteorNormalizer.Normalize(input));

    [Fact]
    public void Tokens_are_normalised_and_lower_cased()
    {
        Assert.Equal(["the", "eagle", "is", "a", "pub", "."], new Meteor().Tokenize("The Eagle is a pub."));
        Assert.Equal(["the", "eagle", "pub"], new Meteor(new MeteorOptions { Preprocessing = MeteorPreprocessing.CocoPtb }).Tokenize("The Eagle, pub."));
    }

    [Fact]
    public void Segments_without_references_are_rejected()
    {
        Assert.Throws<ArgumentException>(() => Meteor.Corpus(["a"], [[""]]));
        Assert.Throws<ArgumentException>(() => Meteor.Corpus(["a", "b"], [["a"]]));
    }
}
