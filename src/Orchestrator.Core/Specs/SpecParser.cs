using System.Globalization;
using System.Text.RegularExpressions;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Orchestrator.Core.Specs;

/// <summary>
/// Parses a sweep spec from YAML and validates it. Every problem is collected (not just the first) and
/// reported with the field's path, e.g. <c>grid.sizes[1]: expected a positive integer, got 'abc'</c>.
/// </summary>
public static partial class SpecParser
{
    public const double DevFraction = 0.3;

    public static SweepSpec ParseFile(string path, SpecVocabulary vocabulary)
    {
        if (!File.Exists(path))
        {
            throw new SpecValidationException(path, [new SpecError("(file)", $"spec file not found: {Path.GetFullPath(path)}")]);
        }

        var length = new FileInfo(path).Length;
        if (length > SpecLimits.MaxSpecBytes)
        {
            throw new SpecValidationException(path, [TooLarge(length, "bytes")]);
        }

        return Parse(File.ReadAllText(path), vocabulary, path);
    }

    public static SweepSpec Parse(string yaml, SpecVocabulary vocabulary, string source = "<inline>")
    {
        if (yaml.Length > SpecLimits.MaxSpecBytes)
        {
            throw new SpecValidationException(source, [TooLarge(yaml.Length, "characters")]);
        }

        if (YamlGuard.Check(yaml) is { } hostile)
        {
            throw new SpecValidationException(source, [hostile]);
        }

        var errors = new List<SpecError>();
        YamlNode? root;
        try
        {
            var stream = new YamlStream();
            stream.Load(new StringReader(yaml));
            root = stream.Documents.Count == 0 ? null : stream.Documents[0].RootNode;
        }
        catch (YamlException ex)
        {
            throw new SpecValidationException(source,
                [new SpecError("(yaml)", $"not valid YAML: {ex.InnerException?.Message ?? ex.Message}", (int)ex.Start.Line)]);
        }

        if (root is null || (root is YamlScalarNode s && string.IsNullOrEmpty(s.Value)))
        {
            throw new SpecValidationException(source, [new SpecError("(root)", "the spec is empty")]);
        }

        var r = new Reader(errors);
        var spec = ReadSpec(r, root, vocabulary);
        if (errors.Count > 0 || spec is null)
        {
            throw new SpecValidationException(source, errors);
        }

        return spec;
    }

    private static SpecError TooLarge(long length, string unit) => new("(file)", string.Create(CultureInfo.InvariantCulture,
        $"the spec is {length:N0} {unit}; specs are limited to {SpecLimits.MaxSpecBytes:N0} bytes (1 MiB)"));

    private static SweepSpec? ReadSpec(Reader r, YamlNode root, SpecVocabulary v)
    {
        var top = r.Map(root, "", "name", "description", "stages", "dataset", "model", "methods", "grid", "training", "decoding", "metrics", "execution", "selection");
        if (top is null)
        {
            return null;
        }

        var name = r.String(top, "name", "name", required: true);
        if (name is not null && !NamePattern().IsMatch(name))
        {
            r.Error("name", $"'{SpecLimits.Quote(name)}' is not a valid sweep name (use letters, digits, '-', '_' or '.', starting with a letter or digit, at most 64 characters)", top, "name");
        }

        var description = r.String(top, "description", "description", required: false);
        var dataset = ReadDataset(r, top, v);
        var model = ReadModel(r, top, v);
        var grid = ReadGrid(r, top);
        var training = ReadTraining(r, top, grid);
        var selection = r.Child(top, "selection", "", required: false) is { } selectionNode ? ReadSelection(r, selectionNode, "selection", grid, null) : null;
        var methods = ReadMethods(r, top, v, grid, training, selection: new SelectionContext(selection));
        var decoding = ReadDecoding(r, top, v);
        var metrics = ReadMetrics(r, top, v);
        var execution = ReadExecution(r, top);
        var stages = ReadStages(r, top, v, training);
        if (stages is not null && methods is not null && grid is not null && execution is not null)
        {
            CheckStageGraph(r, stages, methods, grid, execution);
        }

        if (stages is null || name is null || dataset is null || model is null || methods is null || grid is null || training is null
            || decoding is null || metrics is null || execution is null || r.HasErrors)
        {
            return null;
        }

        return new SweepSpec(name, description, dataset, model, methods, grid, training, decoding, metrics, execution)
        {
            Stages = stages,
            Selection = selection,
        };
    }

    private static List<StageSpec>? ReadStages(Reader r, YamlMappingNode top, SpecVocabulary v, TrainingSpec? sweepTraining)
    {
        var node = r.Child(top, "stages", "", required: false);
        if (node is null)
        {
            return [];
        }

        if (node is not YamlSequenceNode seq)
        {
            r.Error("stages", $"expected a list of stages, got {Reader.Describe(node)}", node);
            return null;
        }

        var stages = new List<StageSpec>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < seq.Children.Count; i++)
        {
            var at = $"stages[{i}].";
            var m = r.Map(seq.Children[i], $"stages[{i}]", "name", "dataset", "methods", "grid", "training");
            if (m is null)
            {
                continue;
            }

            var name = r.String(m, "name", at + "name", required: true);
            if (name is not null)
            {
                if (!NamePattern().IsMatch(name))
                {
                    r.Error(at + "name", $"'{SpecLimits.Quote(name)}' is not a valid stage name (letters, digits, '-', '_' or '.')", m, "name");
                }
                else if (name == SweepSpec.SelectionStage)
                {
                    r.Error(at + "name", $"'{SweepSpec.SelectionStage}' is the stage of the selection cells; choose another name", m, "name");
                }
                else if (name == SweepSpec.MainStage)
                {
                    r.Error(at + "name", $"'{SweepSpec.MainStage}' is the name of the spec's own stage (its top-level dataset, methods and grid); choose another", m, "name");
                }
                else if (!names.Add(name))
                {
                    r.Error(at + "name", $"stage '{SpecLimits.Quote(name)}' is declared twice", m, "name");
                }
            }

            var dataset = ReadDataset(r, m, v, at);
            var grid = ReadGrid(r, m, at);
            var training = sweepTraining is null ? null : ReadTraining(r, m, grid, at, sweepTraining);
            var methods = ReadMethods(r, m, v, grid, training, at);
            if (name is not null && dataset is not null && grid is not null && training is not null && methods is not null)
            {
                stages.Add(new StageSpec(name, dataset, methods, grid, training));
            }
        }

        return r.HasErrors ? null : stages;
    }

    private static IReadOnlyList<CellSelector> ReadNeeds(Reader r, YamlMappingNode method, string path)
    {
        var node = r.Child(method, "needs", path, required: false);
        if (node is null)
        {
            return [];
        }

        var items = node is YamlSequenceNode seq ? seq.Children.ToList() : [node];
        var needs = new List<CellSelector>();
        for (var j = 0; j < items.Count; j++)
        {
            var at = node is YamlSequenceNode ? $"{path}.needs[{j}]" : $"{path}.needs";
            if (items[j] is YamlScalarNode stageName && !string.IsNullOrWhiteSpace(stageName.Value))
            {
                needs.Add(new CellSelector(stageName.Value!));
                continue;
            }

            var m = r.Map(items[j], at, "stage", "method", "size", "subsample", "seed");
            if (m is null)
            {
                continue;
            }

            var stage = r.String(m, "stage", at + ".stage", required: true);
            var methodName = r.String(m, "method", at + ".method", required: false);
            var size = r.Int(m, "size", at + ".size", min: 1, max: SpecLimits.MaxSize);
            var subsample = r.Int(m, "subsample", at + ".subsample", min: 0);
            int? seed = null;
            var sameSeed = false;
            if (m.Children.TryGetValue(new YamlScalarNode("seed"), out var seedNode) && seedNode is YamlScalarNode { Value: "same" })
            {
                sameSeed = true;
            }
            else
            {
                seed = r.Int(m, "seed", at + ".seed", min: 0);
            }

            if (stage is not null)
            {
                needs.Add(new CellSelector(stage, methodName, size, subsample, seed, sameSeed));
            }
        }

        return needs;
    }

    /// <summary>
    /// Checks every <c>needs</c>: the stage exists and is not the method's own, the selector can match cells of that stage,
    /// and the stages form no cycle; <c>execution.artifacts: none</c> cannot feed later stages.
    /// </summary>
    private static void CheckStageGraph(Reader r, List<StageSpec> stages, IReadOnlyList<MethodSpec> mainMethods, GridSpec mainGrid, ExecutionSpec execution)
    {
        var byName = stages.ToDictionary(s => s.Name, StringComparer.Ordinal);
        var all = stages.Select((s, i) => (s.Name, Methods: s.Methods, s.Grid, At: $"stages[{i}].")).Append((SweepSpec.MainStage, mainMethods, mainGrid, ""));
        var edges = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        var anyNeeds = false;
        foreach (var (stageName, methods, grid, at) in all)
        {
            var targets = edges[stageName] = [];
            for (var i = 0; i < methods.Count; i++)
            {
                for (var j = 0; j < methods[i].Needs.Count; j++)
                {
                    anyNeeds = true;
                    var need = methods[i].Needs[j];
                    var path = $"{at}methods[{i}].needs" + (methods[i].Needs.Count > 1 ? $"[{j}]" : "");
                    if (need.Stage == stageName)
                    {
                        r.Error(path, $"a method cannot need cells of its own stage '{stageName}': name an earlier stage", null);
                        continue;
                    }

                    if (!byName.TryGetValue(need.Stage, out var target))
                    {
                        var known = stages.Count == 0 ? "the spec declares no stages" : "known: " + string.Join(", ", stages.Select(s => s.Name));
                        r.Error(path, $"unknown stage '{SpecLimits.Quote(need.Stage)}' ({known})", null);
                        continue;
                    }

                    targets.Add(need.Stage);
                    if (need.Method is not null && target.Methods.All(mm => mm.Name != need.Method))
                    {
                        r.Error(path + ".method", $"stage '{SpecLimits.Quote(need.Stage)}' has no method '{SpecLimits.Quote(need.Method)}' (it has {string.Join(", ", target.Methods.Select(mm => mm.Name))})", null);
                    }

                    if (need.Size is { } size && !target.Grid.Sizes.Contains(size))
                    {
                        r.Error(path + ".size", $"stage '{SpecLimits.Quote(need.Stage)}' has no size {size} (its sizes: {string.Join(", ", target.Grid.Sizes)})", null);
                    }

                    if (need.Subsample is { } sub && sub >= target.Grid.Subsamples)
                    {
                        r.Error(path + ".subsample", $"stage '{SpecLimits.Quote(need.Stage)}' has subsamples 0..{target.Grid.Subsamples - 1}, not {sub}", null);
                    }

                    if (need.Seed is { } seed && !target.Grid.Seeds.Contains(seed))
                    {
                        r.Error(path + ".seed", $"stage '{SpecLimits.Quote(need.Stage)}' has no seed {seed} (its seeds: {string.Join(", ", target.Grid.Seeds)})", null);
                    }

                    if (need.SameSeed && grid.Seeds.FirstOrDefault(s => !target.Grid.Seeds.Contains(s), -1) is var missing and >= 0)
                    {
                        r.Error(path + ".seed", $"'seed: same' but stage '{SpecLimits.Quote(need.Stage)}' has no seed {missing} (its seeds: {string.Join(", ", target.Grid.Seeds)})", null);
                    }
                }
            }
        }

        if (FindCycle(edges) is { } cycle)
        {
            r.Error("stages", $"the stages' needs form a cycle: {string.Join(" → ", cycle)}", null);
        }

        if (anyNeeds && execution.Artifacts == ExecutionSpec.ArtifactsNone)
        {
            r.Error("execution.artifacts", "'none' keeps no trained methods, but this spec's later stages need the cells of earlier ones (use 'needed' or 'all')", null);
        }
    }

    /// <summary>A cycle in the stage graph (its stages, the first repeated at the end), or null.</summary>
    public static IReadOnlyList<string>? FindCycle(IReadOnlyDictionary<string, List<string>> edges)
    {
        var state = new Dictionary<string, int>(StringComparer.Ordinal); // 1 = on the path, 2 = done
        var path = new List<string>();
        IReadOnlyList<string>? Visit(string node)
        {
            state[node] = 1;
            path.Add(node);
            foreach (var next in edges.TryGetValue(node, out var list) ? list : [])
            {
                if (state.GetValueOrDefault(next) == 1)
                {
                    return [.. path.Skip(path.IndexOf(next)), next];
                }

                if (state.GetValueOrDefault(next) == 0 && Visit(next) is { } found)
                {
                    return found;
                }
            }

            path.RemoveAt(path.Count - 1);
            state[node] = 2;
            return null;
        }

        foreach (var node in edges.Keys.Order(StringComparer.Ordinal))
        {
            if (state.GetValueOrDefault(node) == 0 && Visit(node) is { } cycle)
            {
                return cycle;
            }
        }

        return null;
    }

    private static DatasetSpec? ReadDataset(Reader r, YamlMappingNode top, SpecVocabulary v, string at = "")
    {
        var node = r.Child(top, "dataset", at.TrimEnd('.'), required: true);
        if (node is null)
        {
            return null;
        }

        var m = r.Map(node, at + "dataset", "kind", "path", "splits", "eval_limit", "options", "share_training");
        if (m is null)
        {
            return null;
        }

        var kind = r.String(m, "kind", at + "dataset.kind", required: true);
        if (kind is not null && !v.DatasetKinds.Contains(kind))
        {
            r.Error(at + "dataset.kind", $"unknown dataset kind '{SpecLimits.Quote(kind)}' (known: {string.Join(", ", v.DatasetKinds.Order(StringComparer.Ordinal))})", m, "kind");
        }

        var path = r.String(m, "path", at + "dataset.path", required: false);
        var splits = r.StringList(m, "splits", at + "dataset.splits") ?? ["default"];
        if (splits.Count == 0)
        {
            r.Error(at + "dataset.splits", "the list of splits is empty", m, "splits");
        }

        var evalLimit = r.Int(m, "eval_limit", at + "dataset.eval_limit", min: 1, max: SpecLimits.MaxEvalLimit);
        var options = r.ScalarMap(m, "options", at + "dataset.options") ?? new SortedDictionary<string, string>(StringComparer.Ordinal);
        var share = r.Bool(m, "share_training", at + "dataset.share_training") ?? false;
        if (share && splits.Count < 2)
        {
            r.Error(at + "dataset.share_training", "sharing one trained model between splits needs at least two splits", m, "share_training");
        }

        return kind is null ? null : new DatasetSpec(kind, path, splits, evalLimit, options) { ShareTraining = share };
    }

    private static ModelSpec? ReadModel(Reader r, YamlMappingNode top, SpecVocabulary v)
    {
        var node = r.Child(top, "model", "", required: true);
        if (node is null)
        {
            return null;
        }

        var m = r.Map(node, "model", "preset", "path", "init_seed", "pretrain");
        if (m is null)
        {
            return null;
        }

        var preset = r.String(m, "preset", "model.preset", required: false);
        var path = r.String(m, "path", "model.path", required: false);
        if ((preset is null) == (path is null))
        {
            r.Error("model", "give exactly one of 'preset' (a built-in shape) or 'path' (a local checkpoint folder)", m, null);
        }

        if (preset is not null && !v.ModelPresets.Contains(preset))
        {
            r.Error("model.preset", $"unknown preset '{SpecLimits.Quote(preset)}' (known: {string.Join(", ", v.ModelPresets.Order(StringComparer.Ordinal))})", m, "preset");
        }

        var seed = r.Int(m, "init_seed", "model.init_seed", min: 0) ?? 0;
        PretrainSpec? pretrain = null;
        if (r.Child(m, "pretrain", "model", required: false) is { } pretrainNode)
        {
            if (path is not null)
            {
                r.Error("model.pretrain", "pretraining starts from a preset's random initialisation; it cannot be combined with 'path'", m, "pretrain");
            }

            pretrain = ReadPretrain(r, pretrainNode);
            if (pretrain is null)
            {
                return null;
            }
        }

        return new ModelSpec(preset, path, seed, pretrain);
    }

    private static PretrainSpec? ReadPretrain(Reader r, YamlNode node)
    {
        var m = r.Map(node, "model.pretrain", "corpus", "steps", "seed", "batch_size", "learning_rate", "warmup_steps",
            "sequence_length", "vocab_size", "documents");
        if (m is null)
        {
            return null;
        }

        var corpus = r.String(m, "corpus", "model.pretrain.corpus", required: true);
        var steps = r.Int(m, "steps", "model.pretrain.steps", min: 1, max: SpecLimits.MaxSteps) ?? PretrainSpec.DefaultSteps;
        var seed = r.Int(m, "seed", "model.pretrain.seed", min: 0) ?? 0;
        var batch = r.Int(m, "batch_size", "model.pretrain.batch_size", min: 1, max: 4096) ?? PretrainSpec.DefaultBatchSize;
        var lr = r.Double(m, "learning_rate", "model.pretrain.learning_rate", minExclusive: 0) ?? PretrainSpec.DefaultLearningRate;
        var warmup = r.Int(m, "warmup_steps", "model.pretrain.warmup_steps", min: 0, max: SpecLimits.MaxWarmupSteps) ?? PretrainSpec.DefaultWarmupSteps;
        var length = r.Int(m, "sequence_length", "model.pretrain.sequence_length", min: 8, max: PretrainSpec.MaxSequenceLength) ?? PretrainSpec.DefaultSequenceLength;
        var vocab = r.Int(m, "vocab_size", "model.pretrain.vocab_size", min: 260, max: 1_000_000) ?? PretrainSpec.DefaultVocabSize;
        var documents = r.Int(m, "documents", "model.pretrain.documents", min: 1, max: PretrainSpec.MaxDocuments);
        if (documents is not null && corpus is not null && corpus != PretrainSpec.SyntheticCorpus)
        {
            r.Error("model.pretrain.documents", "'documents' sizes the synthetic corpus; a file corpus uses all its lines", m, "documents");
        }

        if (corpus is null)
        {
            return null;
        }

        return new PretrainSpec(corpus, steps, seed, batch, lr, warmup, length, vocab, documents ?? PretrainSpec.DefaultDocuments);
    }

    /// <summary>Selection for the methods being read: the top-level block (inherited), or null for a stage's methods (none allowed).</summary>
    private sealed record SelectionContext(SelectionSpec? TopLevel);

    private static IReadOnlyList<MethodSpec>? ReadMethods(Reader r, YamlMappingNode top, SpecVocabulary v, GridSpec? grid, TrainingSpec? sweepTraining, string at = "",
        SelectionContext? selection = null)
    {
        var node = r.Child(top, "methods", at.TrimEnd('.'), required: true);
        if (node is null)
        {
            return null;
        }

        if (node is not YamlSequenceNode seq)
        {
            r.Error(at + "methods", $"expected a list of methods, got {Reader.Describe(node)}", node);
            return null;
        }

        if (seq.Children.Count == 0)
        {
            r.Error(at + "methods", "the list of methods is empty: name at least one method", node);
            return null;
        }

        var result = new List<MethodSpec>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < seq.Children.Count; i++)
        {
            var path = $"{at}methods[{i}]";
            var item = seq.Children[i];
            string? name;
            IReadOnlyDictionary<string, string> options = new SortedDictionary<string, string>(StringComparer.Ordinal);
            TrainingSpec? training = null;
            IReadOnlyList<CellSelector> needs = [];
            SelectionSpec? methodSelection = selection?.TopLevel;
            if (item is YamlScalarNode scalar)
            {
                name = scalar.Value;
            }
            else
            {
                var m = r.Map(item, path, "name", "options", "training", "needs", "selection");
                if (m is null)
                {
                    continue;
                }

                name = r.String(m, "name", path + ".name", required: true);
                options = r.ScalarMap(m, "options", path + ".options") ?? options;
                if (r.Child(m, "training", path, required: false) is { } trainingNode
                    && r.Map(trainingNode, path + ".training", TrainingKeys) is { } overrides)
                {
                    training = sweepTraining is null ? null : ReadTrainingMap(r, overrides, path + ".training", grid, sweepTraining);
                }

                needs = ReadNeeds(r, m, path);
                if (r.Child(m, "selection", path, required: false) is { } own)
                {
                    if (selection is null)
                    {
                        r.Error(path + ".selection", "selection is for the methods of the spec's own stage, not for an earlier stage's", own);
                    }
                    else if (own is YamlScalarNode { Value: "none" })
                    {
                        methodSelection = null; // this method runs with its own settings, without selection
                    }
                    else
                    {
                        methodSelection = ReadSelection(r, own, path + ".selection", grid, selection.TopLevel);
                    }
                }
            }

            if (string.IsNullOrWhiteSpace(name))
            {
                r.Error(path, "a method needs a name", item);
                continue;
            }

            if (!v.Methods.Contains(name))
            {
                if (v.NotApplicableMethods is { } notApplicable &&
                    notApplicable.FirstOrDefault(kv => string.Equals(kv.Key, name.Trim(), StringComparison.OrdinalIgnoreCase)) is { Key: not null } match)
                {
                    r.Error(path, $"method '{match.Key}' is not applicable to generation: {match.Value}", item);
                }
                else
                {
                    r.Error(path, $"unknown method '{SpecLimits.Quote(name)}'{Reader.DidYouMean(Reader.Closest(name, v.Methods))} " +
                        $"(known: {string.Join(", ", v.Methods.Order(StringComparer.Ordinal))})", item);
                }

                continue;
            }

            if (!seen.Add(name))
            {
                r.Error(path, $"method '{SpecLimits.Quote(name)}' is listed twice: results are grouped by method name, so two variants would be averaged together (compare variants in separate sweeps)", item);
                continue;
            }

            if (methodSelection is not null && needs.Count > 0)
            {
                r.Error(path + ".selection", "a method that needs earlier stages' cells cannot be selected (its selection cells would need them too); give it its settings, or selection: none", item);
            }

            result.Add(new MethodSpec(name, options, training) { Needs = needs, DefaultBaseDropout = v.DefaultBaseDropout(name), Selection = methodSelection });
        }

        return result;
    }

    /// <summary>
    /// Reads a <c>selection:</c> block: candidate lists for training settings and <c>options.NAME</c>, and the control keys
    /// (<c>subsamples</c>, <c>seeds</c>, <c>per_size</c>, <c>by</c>). A method's block takes the control keys it does not give
    /// from <paramref name="inherited"/> (the top-level block) and replaces its candidates.
    /// </summary>
    private static SelectionSpec? ReadSelection(Reader r, YamlNode node, string at, GridSpec? grid, SelectionSpec? inherited)
    {
        if (node is not YamlMappingNode m)
        {
            r.Error(at, $"expected a mapping of settings to candidate lists (e.g. {{learning_rate: [1.0e-4, 1.0e-3]}}), got {Reader.Describe(node)}", node);
            return null;
        }

        var candidates = new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal);
        var order = new List<string>();
        foreach (var (keyNode, valueNode) in m.Children)
        {
            var key = (keyNode as YamlScalarNode)?.Value ?? "?";
            var path = $"{at}.{SpecLimits.Quote(key)}";
            if (SelectionSpec.ControlKeys.Contains(key, StringComparer.Ordinal))
            {
                continue;
            }

            bool isOption = key.StartsWith(SelectionSpec.OptionPrefix, StringComparison.Ordinal) && key.Length > SelectionSpec.OptionPrefix.Length;
            if (!isOption && !SelectionSpec.TrainingSettings.Contains(key, StringComparer.Ordinal))
            {
                var known = SelectionSpec.TrainingSettings.Concat(SelectionSpec.ControlKeys).ToList();
                r.Error(path, $"unknown setting '{SpecLimits.Quote(key)}'{Reader.DidYouMean(Reader.Closest(key, known))}: selection varies training settings " +
                    $"({string.Join(", ", SelectionSpec.TrainingSettings)}) or method options as options.NAME; its other keys are {string.Join(", ", SelectionSpec.ControlKeys)}", keyNode);
                continue;
            }

            if (valueNode is not YamlSequenceNode list || list.Children.Count == 0)
            {
                r.Error(path, $"expected a non-empty list of candidate values, got {Reader.Describe(valueNode)}", valueNode);
                continue;
            }

            var values = new List<string>();
            for (var i = 0; i < list.Children.Count; i++)
            {
                if (SelectionValue(r, key, list.Children[i], $"{path}[{i}]") is not { } value)
                {
                    continue;
                }

                if (values.Contains(value, StringComparer.Ordinal))
                {
                    r.Error($"{path}[{i}]", $"candidate {value} is listed twice", list.Children[i]);
                    continue;
                }

                values.Add(value);
            }

            candidates[key] = values;
            order.Add(key);
        }

        if (candidates.Count == 0)
        {
            r.Error(at, "no candidates: name at least one setting with a list of values (e.g. learning_rate: [1.0e-4, 1.0e-3]), or write selection: none for a method", node);
        }

        int maxSubsamples = grid?.Subsamples ?? 1000;
        int maxSeeds = grid?.Seeds.Count ?? 1000;
        var subsamples = r.Int(m, "subsamples", at + ".subsamples", min: 1, max: maxSubsamples) ?? inherited?.Subsamples ?? 1;
        var seeds = r.Int(m, "seeds", at + ".seeds", min: 1, max: maxSeeds) ?? inherited?.Seeds ?? 1;
        var perSize = r.Bool(m, "per_size", at + ".per_size") ?? inherited?.PerSize ?? false;
        var by = r.String(m, "by", at + ".by", required: false)?.Trim() ?? inherited?.By ?? SelectionSpec.ByDevLoss;
        if (by != SelectionSpec.ByDevLoss)
        {
            r.Error(at + ".by", $"'{SpecLimits.Quote(by)}' is not a selection criterion here: only dev_loss (the best step's dev loss) is implemented; a dev metric would need the dev set decoded, and the evaluation split is never used", m, "by");
        }

        return new SelectionSpec(order.ToDictionary(k => k, k => candidates[k], StringComparer.Ordinal), subsamples, seeds, perSize, by);
    }

    /// <summary>One candidate value of <paramref name="key"/>, canonical, or null after reporting why it is invalid.</summary>
    private static string? SelectionValue(Reader r, string key, YamlNode node, string path)
    {
        if (node is not YamlScalarNode { Value: { Length: > 0 } text })
        {
            r.Error(path, $"expected a single value, got {Reader.Describe(node)}", node);
            return null;
        }

        var wrapper = new YamlMappingNode { { key, node } };
        switch (key)
        {
            case "learning_rate":
                return r.Double(wrapper, key, path, minExclusive: 0)?.ToString("R", CultureInfo.InvariantCulture);
            case "weight_decay":
                return r.Double(wrapper, key, path, minInclusive: 0)?.ToString("R", CultureInfo.InvariantCulture);
            case "batch_size":
                return r.Int(wrapper, key, path, min: 1, max: 4096)?.ToString(CultureInfo.InvariantCulture);
            case "max_steps":
                return r.Int(wrapper, key, path, min: 1, max: SpecLimits.MaxSteps)?.ToString(CultureInfo.InvariantCulture);
            case "warmup_steps":
                return r.Int(wrapper, key, path, min: 0, max: SpecLimits.MaxWarmupSteps)?.ToString(CultureInfo.InvariantCulture);
            case "base_dropout":
                var dropout = TrainingSpec.CanonicalBaseDropout(text);
                if (dropout is null) r.Error(path, $"expected 'eval' or a rate in [0, 1), got '{SpecLimits.Quote(text)}'", node);
                return dropout;
            case "loss":
                if (TrainingSpec.Losses.Contains(text, StringComparer.Ordinal)) return text;
                r.Error(path, $"unknown loss '{SpecLimits.Quote(text)}' (known: {string.Join(", ", TrainingSpec.Losses)})", node);
                return null;
            default:
                return text; // a method option: the method plugin checks it, as it checks options:
        }
    }

    private static GridSpec? ReadGrid(Reader r, YamlMappingNode top, string at = "")
    {
        var node = r.Child(top, "grid", at.TrimEnd('.'), required: true);
        if (node is null)
        {
            return null;
        }

        var m = r.Map(node, at + "grid", "sizes", "subsamples", "seeds", "manifest_seed", "nested");
        if (m is null)
        {
            return null;
        }

        var sizes = r.IntList(m, "sizes", at + "grid.sizes", min: 1, required: true, max: SpecLimits.MaxSize);
        if (sizes is not null)
        {
            if (sizes.Count == 0)
            {
                r.Error(at + "grid.sizes", "the list of sizes is empty: give at least one training-set size", m, "sizes");
            }

            for (var i = 0; i < sizes.Count; i++)
            {
                if (sizes.IndexOf(sizes[i]) != i)
                {
                    r.Error($"{at}grid.sizes[{i}]", $"size {sizes[i]} is listed twice", m, "sizes");
                }
            }
        }

        var subsamples = r.Int(m, "subsamples", at + "grid.subsamples", min: 1, max: 1000) ?? 5;
        IReadOnlyList<int>? seeds = [0, 1];
        if (m.Children.TryGetValue(new YamlScalarNode("seeds"), out var seedNode))
        {
            if (seedNode is YamlScalarNode)
            {
                var count = r.Int(m, "seeds", at + "grid.seeds", min: 1, max: 1000);
                seeds = count is { } c ? Enumerable.Range(0, c).ToList() : null;
            }
            else
            {
                seeds = r.IntList(m, "seeds", at + "grid.seeds", min: 0, required: true);
                if (seeds is { Count: 0 })
                {
                    r.Error(at + "grid.seeds", "the list of seeds is empty", m, "seeds");
                }
                else if (seeds is not null && seeds.Distinct().Count() != seeds.Count)
                {
                    r.Error(at + "grid.seeds", "a seed is listed twice", m, "seeds");
                }
            }
        }

        var manifestSeed = r.Int(m, "manifest_seed", at + "grid.manifest_seed", min: 0) ?? 0;
        var nested = r.Bool(m, "nested", at + "grid.nested") ?? false;
        if (sizes is null || sizes.Count == 0 || seeds is null || seeds.Count == 0)
        {
            return null;
        }

        return new GridSpec(sizes, subsamples, seeds, manifestSeed, nested);
    }

    private static readonly string[] TrainingKeys = ["learning_rate", "batch_size", "max_steps", "warmup_steps", "eval_every", "weight_decay", "base_dropout", "loss"];

    private static TrainingSpec? ReadTraining(Reader r, YamlMappingNode top, GridSpec? grid, string at = "", TrainingSpec? defaults = null)
    {
        var node = r.Child(top, "training", at.TrimEnd('.'), required: false);
        var m = node is null ? new YamlMappingNode() : r.Map(node, at + "training", TrainingKeys);
        return m is null ? null : ReadTrainingMap(r, m, at + "training", grid, defaults);
    }

    /// <summary>
    /// Reads a <c>training</c> map; keys it does not give come from <paramref name="defaults"/> (a method's overrides
    /// over the sweep's settings) or, without defaults, from PROTOCOL.md.
    /// </summary>
    private static TrainingSpec ReadTrainingMap(Reader r, YamlMappingNode m, string at, GridSpec? grid, TrainingSpec? defaults)
    {
        var lr = r.Double(m, "learning_rate", at + ".learning_rate", minExclusive: 0) ?? defaults?.LearningRate ?? 5e-5;
        var batch = r.Int(m, "batch_size", at + ".batch_size", min: 1, max: 4096) ?? defaults?.BatchSize ?? 10;
        var warmup = r.Int(m, "warmup_steps", at + ".warmup_steps", min: 0, max: SpecLimits.MaxWarmupSteps) ?? defaults?.WarmupSteps ?? 100;
        var evalEvery = r.Int(m, "eval_every", at + ".eval_every", min: 1, max: SpecLimits.MaxSteps) ?? defaults?.EvalEvery ?? 50;
        var wd = r.Double(m, "weight_decay", at + ".weight_decay", minInclusive: 0) ?? defaults?.WeightDecay ?? 0.0;
        var baseDropout = defaults?.BaseDropout;
        if (r.String(m, "base_dropout", at + ".base_dropout", required: false) is { } dropoutText)
        {
            baseDropout = TrainingSpec.CanonicalBaseDropout(dropoutText);
            if (baseDropout is null)
            {
                r.Error(at + ".base_dropout", $"expected 'eval' (no dropout in the base) or a rate in [0, 1), got '{SpecLimits.Quote(dropoutText)}'", m, "base_dropout");
            }
        }

        var loss = defaults?.Loss ?? TrainingSpec.LossTokenMean;
        if (r.String(m, "loss", at + ".loss", required: false) is { } lossText)
        {
            if (TrainingSpec.Losses.Contains(lossText.Trim(), StringComparer.Ordinal))
            {
                loss = lossText.Trim();
            }
            else
            {
                r.Error(at + ".loss", $"unknown loss '{SpecLimits.Quote(lossText)}'{Reader.DidYouMean(Reader.Closest(lossText, TrainingSpec.Losses))} " +
                    $"(known: {string.Join(", ", TrainingSpec.Losses)})", m, "loss");
            }
        }

        var steps = new SortedDictionary<int, int>();
        var sizes = grid?.Sizes ?? [];
        if (!m.Children.TryGetValue(new YamlScalarNode("max_steps"), out var stepsNode))
        {
            foreach (var size in sizes)
            {
                steps[size] = defaults is not null && defaults.MaxStepsBySize.TryGetValue(size, out var inherited) ? inherited : DefaultMaxSteps(size);
            }
        }
        else if (stepsNode is YamlScalarNode)
        {
            var all = r.Int(m, "max_steps", at + ".max_steps", min: 1, max: SpecLimits.MaxSteps);
            foreach (var size in sizes)
            {
                steps[size] = all ?? 1;
            }
        }
        else if (stepsNode is YamlMappingNode stepsMap)
        {
            var given = new HashSet<int>();
            foreach (var (k, val) in stepsMap.Children)
            {
                var keyText = (k as YamlScalarNode)?.Value;
                var path = $"{at}.max_steps.{SpecLimits.Quote(keyText)}";
                if (!int.TryParse(keyText, NumberStyles.None, CultureInfo.InvariantCulture, out var size))
                {
                    r.Error(path, $"expected a training-set size as the key, got '{SpecLimits.Quote(keyText)}'", k);
                    continue;
                }

                if (grid is not null && !sizes.Contains(size))
                {
                    r.Error(path, $"size {size} is not in grid.sizes [{string.Join(", ", sizes)}]", k);
                    continue;
                }

                given.Add(size);
                if (r.IntValue(val, path, min: 1, max: SpecLimits.MaxSteps) is { } n)
                {
                    steps[size] = n;
                }
            }

            foreach (var size in sizes.Where(s => !given.Contains(s)))
            {
                if (defaults is not null && defaults.MaxStepsBySize.TryGetValue(size, out var inherited))
                {
                    steps[size] = inherited;
                    continue;
                }

                r.Error(at + ".max_steps", $"no max_steps for size {size} (give one per size in grid.sizes, or a single number)", stepsNode);
            }
        }
        else
        {
            r.Error(at + ".max_steps", $"expected a number or a map from size to steps, got {Reader.Describe(stepsNode)}", stepsNode);
        }

        return new TrainingSpec(lr, batch, steps, warmup, evalEvery, wd) { BaseDropout = baseDropout, Loss = loss };
    }

    /// <summary>Default max update steps per size (PEFT_METHODS.md, E2E low-data fine-tuning: 100/100/200/400).</summary>
    public static int DefaultMaxSteps(int size) => size switch
    {
        <= 100 => 100,
        <= 200 => 200,
        _ => 400,
    };

    private static DecodingSpec? ReadDecoding(Reader r, YamlMappingNode top, SpecVocabulary v)
    {
        var node = r.Child(top, "decoding", "", required: false);
        var m = node is null ? new YamlMappingNode() : r.Map(node, "decoding", "strategy", "beam_size", "max_new_tokens", "min_new_tokens",
            "length_penalty", "length_normalization", "min_length");
        if (m is null)
        {
            return null;
        }

        var defaultStrategy = v.DecodingStrategies.Contains("beam") ? "beam" : "greedy";
        var strategy = r.String(m, "strategy", "decoding.strategy", required: false) ?? defaultStrategy;
        if (!v.DecodingStrategies.Contains(strategy))
        {
            r.Error("decoding.strategy", $"unknown decoding strategy '{SpecLimits.Quote(strategy)}' (known: {string.Join(", ", v.DecodingStrategies.Order(StringComparer.Ordinal))})", m, "strategy");
        }

        var beam = r.Int(m, "beam_size", "decoding.beam_size", min: 1, max: SpecLimits.MaxBeamSize) ?? 5;
        var maxNew = r.Int(m, "max_new_tokens", "decoding.max_new_tokens", min: 1, max: SpecLimits.MaxNewTokens) ?? 100;
        var minNew = r.Int(m, "min_new_tokens", "decoding.min_new_tokens", min: 0) ?? 5;
        if (minNew > maxNew)
        {
            r.Error("decoding.min_new_tokens", $"min_new_tokens ({minNew}) is larger than max_new_tokens ({maxNew})", m, "min_new_tokens");
        }

        var lengthPenalty = r.Double(m, "length_penalty", "decoding.length_penalty") ?? 1.0;
        var normalization = r.String(m, "length_normalization", "decoding.length_normalization", required: false)?.Trim() ?? DecodingSpec.NormalizeNewTokens;
        if (!DecodingSpec.Normalizations.Contains(normalization, StringComparer.Ordinal))
        {
            r.Error("decoding.length_normalization", $"unknown length normalisation '{SpecLimits.Quote(normalization)}'{Reader.DidYouMean(Reader.Closest(normalization, DecodingSpec.Normalizations))} " +
                $"(known: {string.Join(", ", DecodingSpec.Normalizations)}: generated tokens only, or the prompt too as transformers 3.x)", m, "length_normalization");
        }

        var minLength = r.Int(m, "min_length", "decoding.min_length", min: 0, max: 1_000_000);
        var beamOnly = strategy != "beam";
        if (beamOnly && (m.Children.ContainsKey(new YamlScalarNode("length_penalty")) || m.Children.ContainsKey(new YamlScalarNode("length_normalization"))))
        {
            r.Error("decoding.length_penalty", $"length_penalty and length_normalization score beam hypotheses; strategy '{SpecLimits.Quote(strategy)}' has none (use strategy: beam)", m, "length_penalty");
        }

        return new DecodingSpec(strategy, beam, maxNew, minNew, lengthPenalty, normalization, minLength);
    }

    private static IReadOnlyList<string>? ReadMetrics(Reader r, YamlMappingNode top, SpecVocabulary v)
    {
        if (!top.Children.ContainsKey(new YamlScalarNode("metrics")))
        {
            return ["bleu"];
        }

        var list = r.StringList(top, "metrics", "metrics");
        if (list is null)
        {
            return null;
        }

        if (list.Count == 0)
        {
            r.Error("metrics", "the list of metrics is empty", top, "metrics");
        }

        for (var i = 0; i < list.Count; i++)
        {
            if (!v.Metrics.Contains(list[i]))
            {
                r.Error($"metrics[{i}]", $"unknown metric '{SpecLimits.Quote(list[i])}'{Reader.DidYouMean(Reader.Closest(list[i], v.Metrics))} " +
                    $"(known: {string.Join(", ", v.Metrics.Order(StringComparer.Ordinal))})", top, "metrics");
            }
        }

        return list;
    }

    private static ExecutionSpec? ReadExecution(Reader r, YamlMappingNode top)
    {
        var node = r.Child(top, "execution", "", required: false);
        var m = node is null ? new YamlMappingNode() : r.Map(node, "execution", "max_attempts", "lease_seconds", "device", "artifacts");
        if (m is null)
        {
            return null;
        }

        var attempts = r.Int(m, "max_attempts", "execution.max_attempts", min: 1, max: 100) ?? 3;
        var lease = r.Int(m, "lease_seconds", "execution.lease_seconds", min: 5, max: 7 * 24 * 3600) ?? 600;
        var device = r.String(m, "device", "execution.device", required: false) ?? "any";
        if (device is not ("any" or "cpu" or "cuda"))
        {
            r.Error("execution.device", $"expected any, cpu or cuda, got '{SpecLimits.Quote(device)}'", m, "device");
        }

        var artifacts = r.String(m, "artifacts", "execution.artifacts", required: false) ?? ExecutionSpec.ArtifactsNeeded;
        if (artifacts is not (ExecutionSpec.ArtifactsNeeded or ExecutionSpec.ArtifactsAll or ExecutionSpec.ArtifactsNone))
        {
            r.Error("execution.artifacts", $"expected needed, all or none, got '{SpecLimits.Quote(artifacts)}'", m, "artifacts");
        }

        return new ExecutionSpec(attempts, lease, device == "any" ? null : device, artifacts);
    }

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
    private static partial Regex NamePattern();
}
