using System.Diagnostics;
using System.Text;
using Orchestrator.Core.Specs;

namespace Orchestrator.Core.Tests;

/// <summary>YAML built to crash or hang a parser is refused with an error; the process survives and answers quickly.</summary>
public sealed class HostileYamlTests
{
    private static SpecError RefuseOne(string yaml)
    {
        var clock = Stopwatch.StartNew();
        var ex = Assert.Throws<SpecValidationException>(() => SpecParser.Parse(yaml, TestVocabulary.Value));
        // Not a speed target: an unbounded expansion or recursion would take minutes or crash, not seconds.
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30), $"refusing took {clock.Elapsed}");
        return Assert.Single(ex.Errors);
    }

    [Fact]
    public void A_self_referencing_anchor_is_refused()
    {
        var error = RefuseOne(TestVocabulary.MinimalSpec + "\ndescription: &loop [a, b, *loop]\n");
        Assert.Equal("(yaml)", error.Path);
        Assert.Contains("*loop refers to the anchor &loop it is inside", error.Message, StringComparison.Ordinal);
        Assert.Equal(11, error.Line);
    }

    [Fact]
    public void A_self_referencing_anchor_used_as_a_mapping_key_is_refused()
    {
        // YamlDotNet hashes mapping keys recursively: this one would recurse without end.
        var error = RefuseOne(TestVocabulary.MinimalSpec + "\ndescription: &k {*k : 1}\n");
        Assert.Equal("(yaml)", error.Path);
        Assert.Contains("alias (*k) is used as a mapping key", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Lists_and_mappings_as_keys_are_refused()
    {
        var error = RefuseOne(TestVocabulary.MinimalSpec + "\n? [a, b]\n: 1\n");
        Assert.Contains("a list is used as a mapping key", error.Message, StringComparison.Ordinal);
        error = RefuseOne(TestVocabulary.MinimalSpec + "\n? {a: b}\n: 1\n");
        Assert.Contains("a mapping is used as a mapping key", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_billion_laughs_alias_bomb_is_refused_without_expanding_it()
    {
        const string bomb = """
            a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
            b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
            c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
            d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
            e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
            f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
            g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
            h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
            i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
            """;
        var error = RefuseOne(bomb);
        Assert.Equal("(yaml)", error.Path);
        Assert.Contains("more than 100,000 nodes once its aliases are expanded", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Deep_nesting_is_refused_without_recursing()
    {
        // 200,000 levels would overflow the stack of a recursive loader (a crash no catch can stop).
        var deep = TestVocabulary.MinimalSpec + "\ndescription: " + new string('[', 200_000) + new string(']', 200_000) + "\n";
        var error = RefuseOne(deep);
        Assert.Contains("nested more than 64 levels deep", error.Message, StringComparison.Ordinal);

        // Ordinary nesting reaches the spec checks (here: a description must be text).
        var shallow = TestVocabulary.MinimalSpec + "\ndescription: [[[[[[[[1]]]]]]]]\n";
        Assert.Equal("description", Assert.Single(Assert.Throws<SpecValidationException>(() => SpecParser.Parse(shallow, TestVocabulary.Value)).Errors).Path);
    }

    [Fact]
    public void A_spec_file_over_one_mebibyte_is_refused_with_its_size()
    {
        var path = Path.GetTempFileName();
        try
        {
            File.WriteAllText(path, TestVocabulary.MinimalSpec + "\n# " + new string('x', 2 * 1024 * 1024) + "\n");
            var ex = Assert.Throws<SpecValidationException>(() => SpecParser.ParseFile(path, TestVocabulary.Value));
            var error = Assert.Single(ex.Errors);
            Assert.Equal("(file)", error.Path);
            Assert.Contains($"{new FileInfo(path).Length:N0} bytes", error.Message, StringComparison.Ordinal);
            Assert.Contains("limited to 1,048,576 bytes", error.Message, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void A_huge_junk_value_is_cut_in_the_error_message()
    {
        var junk = new string('z', 300_000);
        var ex = Assert.Throws<SpecValidationException>(() =>
            SpecParser.Parse(TestVocabulary.MinimalSpec.Replace("name: t", $"name: {junk}").Replace("preset: tiny", $"preset: {junk}") + $"\ndecoding: {{strategy: {junk}}}\n",
                TestVocabulary.Value));
        Assert.Equal(3, ex.Errors.Count);
        Assert.True(ex.Message.Length < 2000, $"the message is {ex.Message.Length} characters");
        Assert.Contains("(300,000 characters)", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Thousands_of_problems_are_counted_not_all_listed()
    {
        var yaml = new StringBuilder(TestVocabulary.MinimalSpec).Append('\n');
        for (var i = 0; i < 3000; i++)
        {
            yaml.Append("junk").Append(i).Append(": 1\n");
        }

        var ex = Assert.Throws<SpecValidationException>(() => SpecParser.Parse(yaml.ToString(), TestVocabulary.Value));
        Assert.Equal(3000, ex.Errors.Count);
        Assert.Contains("… and 2950 more", ex.Message, StringComparison.Ordinal);
        Assert.Equal(52, ex.Message.Split('\n').Length);
    }

    [Fact]
    public void Ordinary_anchors_and_aliases_still_work()
    {
        var spec = SpecParser.Parse(TestVocabulary.MinimalSpec.Replace("methods: [finetune]", """
            methods:
              - {name: lora, training: &fast {learning_rate: 1.0e-2}}
              - {name: prefix, training: *fast}
            """), TestVocabulary.Value);
        Assert.Equal(1e-2, spec.Methods[1].TrainingOr(spec.Training).LearningRate);
    }
}
