namespace Orchestrator.Data.Download;

/// <summary>How a downloaded file becomes files of the dataset folder.</summary>
public enum Unpack
{
    /// <summary>Kept as it is, under its <see cref="SourceFile.Target"/> name.</summary>
    None,

    /// <summary>A .zip archive, extracted into the dataset folder.</summary>
    Zip,

    /// <summary>A .tar.gz archive, extracted into the dataset folder.</summary>
    TarGz,
}

/// <summary>One file of a dataset's official distribution.</summary>
/// <param name="Url">Where it is published (pinned to a commit where the host allows it).</param>
/// <param name="Target">Its path inside the dataset folder (for an archive: where the download is kept while it is unpacked).</param>
/// <param name="Sha256">The pinned SHA-256 of the download, lower-case hex; null where it could not be verified when the catalog was
/// written (the download is then reported as unverified and its sum recorded in the dataset's <c>SOURCES.tsv</c>).</param>
/// <param name="Bytes">Its size where known (for progress before the server says).</param>
/// <param name="Unpack">Whether and how it is unpacked.</param>
public sealed record SourceFile(string Url, string Target, string? Sha256, long? Bytes = null, Unpack Unpack = Unpack.None);

/// <summary>A dataset that <c>orchestrator data get NAME</c> can fetch.</summary>
/// <param name="Name">Its name on the command line and in a spec's <c>path: data:NAME</c>.</param>
/// <param name="Kind">The reader (<c>dataset.kind</c>) for its files.</param>
/// <param name="Title">What it is.</param>
/// <param name="Licence">Its licence, as its authors give it.</param>
/// <param name="Homepage">The authors' page for it.</param>
/// <param name="Files">What is downloaded.</param>
/// <param name="SpecPaths">Paths inside the dataset folder worth naming in a spec, each with what it is.</param>
/// <param name="Convert">A step run on the dataset folder after every file is in place (XSUM's articles become JSONL), or null.</param>
public sealed record DatasetSource(
    string Name,
    string Kind,
    string Title,
    string Licence,
    string Homepage,
    IReadOnlyList<SourceFile> Files,
    IReadOnlyList<(string Path, string What)> SpecPaths,
    Action<string, Action<string>>? Convert = null);

/// <summary>
/// The datasets of the study, from their official public locations, with the SHA-256 sums this version pins. Sums were taken
/// from the files themselves at the pinned commits; where a file was not available to hash when this catalog was written (the
/// E2E training set, the DART training and test files, the XSUM archive) its sum is null and the download says it is unverified.
/// </summary>
public static class DatasetSources
{
    private const string E2eCommit = "ab0d967dd5729ce455ef14ba9ffafc456a335264";
    private const string DartCommit = "bb644b12ec1d0264f96a31145534b9a94f6ff5f5";
    private const string PrefixTuningCommit = "6519d30e69b15a180f23e2cd41b766d3f62b8e82";
    private const string XsumCommit = "7b95485c3e861d7caff76a8b4c6b3fd3bf7ee9b1";

    public static DatasetSource E2e { get; } = new(
        "e2e", DatasetCatalog.E2e,
        "E2E NLG Challenge data (Novikova, Dušek and Rieser 2017): training, development and test sets with references",
        "CC BY-SA 4.0", "https://github.com/tuetschek/e2e-dataset",
        [
            new($"https://raw.githubusercontent.com/tuetschek/e2e-dataset/{E2eCommit}/trainset.csv", "trainset.csv", null),
            new($"https://raw.githubusercontent.com/tuetschek/e2e-dataset/{E2eCommit}/devset.csv", "devset.csv",
                "fc26b78cdb849c80545f513b223d1e051138b43882eeb79e3eb153e689c864f9", 1_161_305),
            new($"https://raw.githubusercontent.com/tuetschek/e2e-dataset/{E2eCommit}/testset_w_refs.csv", "testset_w_refs.csv",
                "edc8db685e39bb9824d5bd70c18b1c9b0412d14b527aa960e2d1c8251ee15ccd", 1_310_822),
        ],
        [
            ("data:e2e", "the official split: trains on trainset.csv, evaluates testset_w_refs.csv"),
            ("data:e2e/devset.csv", "the development set alone, split by hash (the study's sweeps/e2e-lowdata.yaml)"),
        ]);

    public static DatasetSource Webnlg { get; } = new(
        "webnlg", DatasetCatalog.Webnlg,
        "WebNLG challenge 2017 (Gardent et al. 2017), as in the Prefix-Tuning code release: train/ and dev/ by triple count, test/ with seen and unseen categories",
        "CC BY-NC-SA 4.0", "https://gitlab.com/shimorina/webnlg-dataset (copy used: https://github.com/XiangLi1999/PrefixTuning, data/webnlg_challenge_2017)",
        WebnlgFiles(),
        [("data:webnlg", "train/ for training, test/testdata_with_lex.xml for evaluation (splits seen, unseen, all)")]);

    public static DatasetSource Dart { get; } = new(
        "dart", DatasetCatalog.Dart,
        "DART v1.1.1 (Nan et al. 2021): open-domain structured data record to text",
        "MIT", "https://github.com/Yale-LILY/dart",
        [
            new($"https://raw.githubusercontent.com/Yale-LILY/dart/{DartCommit}/data/v1.1.1/dart-v1.1.1-full-train.json", "dart-v1.1.1-full-train.json", null),
            new($"https://raw.githubusercontent.com/Yale-LILY/dart/{DartCommit}/data/v1.1.1/dart-v1.1.1-full-dev.json", "dart-v1.1.1-full-dev.json",
                "56606eac12baa7f0ddb81c61890f9f1a95bace4df8f8989852786358fe5d2b88", 2_468_789),
            new($"https://raw.githubusercontent.com/Yale-LILY/dart/{DartCommit}/data/v1.1.1/dart-v1.1.1-full-test.json", "dart-v1.1.1-full-test.json", null),
        ],
        [
            ("data:dart", "trains on dart-v1.1.1-full-train.json, evaluates dart-v1.1.1-full-test.json"),
            ("data:dart/dart-v1.1.1-full-dev.json", "the development set alone, split by hash"),
        ]);

    public static DatasetSource Xsum { get; } = new(
        "xsum", DatasetCatalog.Xsum,
        "XSUM (Narayan, Cohen and Lapata 2018): BBC articles with one-sentence summaries, converted to JSONL {id, document, summary, topic}",
        "the authors' terms (BBC articles, for research use; see the homepage)", "https://github.com/EdinburghNLP/XSum",
        [
            new("http://bollin.inf.ed.ac.uk/public/direct/XSUM-EMNLP18-Summary-Data-Original.tar.gz", "XSUM-EMNLP18-Summary-Data-Original.tar.gz", null,
                Unpack: Unpack.TarGz),
            new($"https://raw.githubusercontent.com/EdinburghNLP/XSum/{XsumCommit}/XSum-Dataset/XSum-TRAINING-DEV-TEST-SPLIT-90-5-5.json",
                "XSum-TRAINING-DEV-TEST-SPLIT-90-5-5.json", "9c0c5d8f048a90bd68b19a34e4c30577ed270d3247b2119fa06a04ef46292068", 2_720_574),
        ],
        [("data:xsum", "trains on xsum-train.jsonl, evaluates xsum-test.jsonl (splits news-to-sports, within-news)")],
        XsumConverter.Convert);

    /// <summary>Every dataset <c>data get</c> knows, by name.</summary>
    public static IReadOnlyList<DatasetSource> All { get; } = [E2e, Webnlg, Dart, Xsum];

    public static DatasetSource? Find(string name) => All.FirstOrDefault(s => s.Name == name);

    private static SourceFile W(string path, long bytes, string sha256) =>
        new($"https://raw.githubusercontent.com/XiangLi1999/PrefixTuning/{PrefixTuningCommit}/data/webnlg_challenge_2017/{path}", path, sha256, bytes);

    /// <summary>The 107 XML files of data/webnlg_challenge_2017 at the pinned commit, with their sizes and sums.</summary>
    private static List<SourceFile> WebnlgFiles() =>
    [
        W("dev/1triples/1triple_allSolutions_Airport_dev_challenge.xml", 21414, "93dd0a98791c9df1e5d53289840ec73c86e751cd892b5ebbd0070bb2b13bac99"),
        W("dev/1triples/1triple_allSolutions_Astronaut_dev_challenge.xml", 5545, "520e3df154d02a585c9b16fcec1e2a983fa5a13ab52c12cc64b43ce808c05e8e"),
        W("dev/1triples/1triple_allSolutions_Building_dev_challenge.xml", 15926, "ed15a33716191fe5a24f6b366292e50e4444e1f80b1cee3e99834b7561c81b8b"),
        W("dev/1triples/1triple_allSolutions_City_dev_challenge.xml", 17213, "e31d134b3a45140cc61093be0d17249e6b6ca356e50b81a2f48352536ecb2dac"),
        W("dev/1triples/1triple_allSolutions_ComicsCharacter_dev_challenge.xml", 7651, "984cfc0c4862e9ffd9c35a9402c24a17545754da95a09c0a23b1f0c5552e24e9"),
        W("dev/1triples/1triple_allSolutions_Food_dev_challenge.xml", 17001, "7a8763f6a385ae219c7ec14db5062a2b2ec43d26c87639fe86731f9417001eb4"),
        W("dev/1triples/1triple_allSolutions_Monument_dev_challenge.xml", 4731, "34168eb7e81478374f35e520680f91d1cce87268aa96b2f88ef2a094b1b6e371"),
        W("dev/1triples/1triple_allSolutions_SportsTeam_dev_challenge.xml", 17125, "2febc7f2b1c68e15fcdabd2217e8e2d3af2a176599054a19134052abdcc9c17f"),
        W("dev/1triples/1triple_allSolutions_University_dev_challenge.xml", 5543, "3babb23a13ed46443d06564e12579ce6a9165af6ca370c6cb48c2c03b55714c9"),
        W("dev/1triples/1triple_allSolutions_WrittenWork_dev_challenge.xml", 16709, "5b8b1720cb95d767bdef1cc7d274406dbc16dc3e5aeafdd74e7d5fb51c08cb92"),
        W("dev/2triples/2triples_Airport_dev_challenge.xml", 23193, "f3031d4cf868fe7bbeeabe627c5ceed9289f70dd11bb34c19c8b70ef10a4695a"),
        W("dev/2triples/2triples_Astronaut_dev_challenge.xml", 4668, "6ebd2f0875c22209e51f25f6a4895bf375514d8abbc1c218b0dcdad9e7487352"),
        W("dev/2triples/2triples_Building_dev_challenge.xml", 19934, "2f38b2a8bc86635504c97cb137a01842e25d249f12171ce28137929c5e303711"),
        W("dev/2triples/2triples_ComicsCharacter_dev_challenge.xml", 8537, "64b1b9d8cd805b5ae50ba879519be85471b1f32860184abcf9fdada455ab39ac"),
        W("dev/2triples/2triples_Food_dev_challenge.xml", 27171, "008e8184db0b4798353bc6394e2a61757bd4068c134966fc380321ebe14f3e55"),
        W("dev/2triples/2triples_Monument_dev_challenge.xml", 3648, "4ae6e1114fe0d15e85d9114bc677bf05bcea9b76000cc2831bb291373983fade"),
        W("dev/2triples/2triples_SportsTeam_dev_challenge.xml", 19104, "60f6f4fdfda7b4594051e7a8e2cfef3a89bc72d0a81f20acacedc74adcd9a92b"),
        W("dev/2triples/2triples_University_dev_challenge.xml", 5772, "5404aea185e3649536a7d39773ba66540598089772cbf53ce56769518cb54bfd"),
        W("dev/2triples/2triples_WrittenWork_dev_challenge.xml", 24418, "66b1d1b60152a40cab369ae2a6120954779ce06369a81fc8e5c4ede6ec9543e2"),
        W("dev/3triples/3triples_Airport_dev_challenge.xml", 31679, "00430e5312b17da56447f69deb3534c24c2161b50e48de7966b5b0c1fb10d315"),
        W("dev/3triples/3triples_Astronaut_dev_challenge.xml", 8392, "e78277b73024add17526aed538d675b7ef4d80a77f339db3ba51d248c14766cc"),
        W("dev/3triples/3triples_Building_dev_challenge.xml", 31455, "b36251a66dae3f562fe9e695073d65738094a63693a097e160ed3a11a51fd0a2"),
        W("dev/3triples/3triples_ComicsCharacter_dev_challenge.xml", 8815, "b54cb6dc47163810c759c081e226c58c2b2ef54505f64871653c929cfb5a26c6"),
        W("dev/3triples/3triples_Food_dev_challenge.xml", 39523, "1b2f4e4d8949c0d7762976c4b8ee676469999fa268c9f70055341ea7b114897c"),
        W("dev/3triples/3triples_Monument_dev_challenge.xml", 5698, "e7198a1b7e8084555ae85489f6473e54830656f33fbd9ef1b7927331e6a6fa5c"),
        W("dev/3triples/3triples_SportsTeam_dev_challenge.xml", 26287, "5f93f50c984911649a0b7ff2e85a1c22bfbf924c4a86f94716f31f85e74bb51f"),
        W("dev/3triples/3triples_University_dev_challenge.xml", 9569, "5ffaad721ccd9a7d26cbaaf5ff4d8e72fd4f38a86da20ad7125bc16dada196b1"),
        W("dev/3triples/3triples_WrittenWork_dev_challenge.xml", 39193, "49041cfa8a9ad15eff489cb968e522a3647beda7794230c490b46a3964b77ce7"),
        W("dev/4triples/4triples_Airport_dev_challenge.xml", 40774, "e17291f5d47a1254215afa852d4b0a2896b4ab4d1cf304ac56ee61e12d36f218"),
        W("dev/4triples/4triples_Astronaut_dev_challenge.xml", 11497, "95be9ffdc2a70eb0dfa4be2381551e6d8a4280ab4da13113d4916002e5545d3c"),
        W("dev/4triples/4triples_Building_dev_challenge.xml", 36262, "ba1eaeef5b41d85543b68e71da80a152a04cf9d8383bedc61926168ff0bec3c3"),
        W("dev/4triples/4triples_ComicsCharacter_dev_challenge.xml", 6873, "68563766d8044eb4cc7aeab14444b347fb7bbd73bb01e7b3c4b1c5c70ccc8829"),
        W("dev/4triples/4triples_Food_dev_challenge.xml", 58234, "7b0be66dccbed8cc1f4ab2b43d299653278988f5969681920c69ae15a88bf646"),
        W("dev/4triples/4triples_Monument_dev_challenge.xml", 9759, "65fc7b3ba50d35a1a6b62a0afc58b3d29283a550fa64ec36913d5ed2a3c4258f"),
        W("dev/4triples/4triples_SportsTeam_dev_challenge.xml", 25228, "7cc6115ebfb378bd7b8440f0ea22021c18217d5339d4981936bca15b09706351"),
        W("dev/4triples/4triples_University_dev_challenge.xml", 14435, "311403ad989530134d2e719a9fcdbf1dd641b2a61f869cd495a0a52d4a8a793f"),
        W("dev/4triples/4triples_WrittenWork_dev_challenge.xml", 30493, "02b7fa944571729ce232ed80c4e7dee1bc8a5837a707e8b93d936e3788421b21"),
        W("dev/5triples/5triples_Airport_dev_challenge.xml", 52231, "b49c4a927e40b2f18d3caf4e16713d5f557e7fc528bbcfd080a20cc3123e18df"),
        W("dev/5triples/5triples_Astronaut_dev_challenge.xml", 16676, "347ab9ad1d0620f26c1050644d76f9c1c2057fbea0eddc54e3587470b0f80784"),
        W("dev/5triples/5triples_Building_dev_challenge.xml", 32710, "8f32c963c83e3aa5d170c8bbf48b54b3bc91d4fb071b6c7954d4af516e2dee44"),
        W("dev/5triples/5triples_ComicsCharacter_dev_challenge.xml", 3291, "c2a5c96467944649878051e32b00abc759bf6c97ce2eea8dfebecb74160200ff"),
        W("dev/5triples/5triples_Food_dev_challenge.xml", 41303, "5fdcfadb78d061023abe94d61677f39d1eeb845208fa42e5c5862470dfa29483"),
        W("dev/5triples/5triples_Monument_dev_challenge.xml", 10574, "60d1b0719a64f21f961a1f2fe52d9b6083f9f717d6b0f24546f9f90d0f358af2"),
        W("dev/5triples/5triples_SportsTeam_dev_challenge.xml", 9871, "66bf78fab04c629e397f3dcb869cbb82147d08eb600e0e16277db164e3c4c8de"),
        W("dev/5triples/5triples_University_dev_challenge.xml", 14312, "a43f2eb627e363ff8fb3578b6aeec90b162844f27ebf66f376ae1c7097e8532c"),
        W("dev/5triples/5triples_WrittenWork_dev_challenge.xml", 19758, "9794ef205ef91718b487177cb8eaabc870e32ff4d6d195d010c7c90b36f17dc9"),
        W("dev/6triples/6triples_Astronaut_dev_challenge.xml", 18390, "5c6304c4e663c9004d07d2cb6048da388c92f9dc873c9759b626d1159a5bdc04"),
        W("dev/6triples/6triples_Monument_dev_challenge.xml", 9235, "574e58cfbd6e72f3d0f14e92253b44a724b466e9553208392c773ae734269f0b"),
        W("dev/6triples/6triples_University_dev_challenge.xml", 19805, "775690fa97aa672694252da917bff50f39447b415c61dd7a953df43b4690419d"),
        W("dev/7triples/7triples_Astronaut_dev_challenge.xml", 21125, "bab7560ca964cc5b7e20b2a2e33822fcc6ea372d2e9e036bec63ea177c10f4d7"),
        W("dev/7triples/7triples_Monument_dev_challenge.xml", 6958, "4de385ac768c71ee86f0148c304fa0c2bd94b9f77d30aaf3601f719f4441ecf5"),
        W("dev/7triples/7triples_University_dev_challenge.xml", 18746, "f62020ba398dfbef68a74d470dc79f8fb6d27a675ae31a089e1e782f5ec6162f"),
        W("test/testdata_no_lex.xml", 1354862, "8020aabab38bf70cffb3e5ff2ae9301c318ac39867f148d60a27bfd32a583757"),
        W("test/testdata_unseen_with_lex.xml", 1012001, "c6915ead1319b8e59aaff4708cafbc6a9d805069f4e70b674637a8012fc58de5"),
        W("test/testdata_with_lex.xml", 2129537, "43287905cbfe47697232d569ea6ff072d598282da2ea022bc435ca26b943cd93"),
        W("train/1triples/1triple_allSolutions_Airport_train_challenge.xml", 179592, "7a7ae89429f6b39de4a91709b7682d622bb3596f2026158f3e1726f16e5e1b8a"),
        W("train/1triples/1triple_allSolutions_Astronaut_train_challenge.xml", 48443, "4f256da55c70a3b50bd006f5c384b13ce75a914b7e1e8c19a607e8ebada309a2"),
        W("train/1triples/1triple_allSolutions_Building_train_challenge.xml", 131777, "88f6ebd60157abfeafc62a0396068ebe3eae7bf2f0dcbfa2107138eb90e1ce9f"),
        W("train/1triples/1triple_allSolutions_City_train_challenge.xml", 144300, "13adb0d860390f4866fdb5c1018532c51cf50ec123267b8e685b135afe2b86d4"),
        W("train/1triples/1triple_allSolutions_ComicsCharacter_train_challenge.xml", 58484, "d5c1964b0a55c9443068516d7f4058e86a3d069b1570f679f7c4fe178480c769"),
        W("train/1triples/1triple_allSolutions_Food_train_challenge.xml", 146214, "a64a70aa72bc2bacb28b61683a687f7345bc46a6aa6396bb6759730340123de9"),
        W("train/1triples/1triple_allSolutions_Monument_train_challenge.xml", 29562, "6988cb5f17c74abf6902cbca1ffd92594c252a9b685876ba461f68796d4c945b"),
        W("train/1triples/1triple_allSolutions_SportsTeam_train_challenge.xml", 136818, "b548204ba4f2f4dd185771d7b0721046cbaaf25c7adf346b627b100c3a10b954"),
        W("train/1triples/1triple_allSolutions_University_train_challenge.xml", 40643, "cffd2208345ca3367426fdafed3897d796254499a00ad2b977818ed15b407f79"),
        W("train/1triples/1triple_allSolutions_WrittenWork_train_challenge.xml", 127010, "cb4102c666cbf99221ba1e03ef159e94c10107669fb28039ab43358e0b557664"),
        W("train/2triples/2triples_Airport_train_challenge.xml", 189478, "a739392a1a316647adda0ba914ffa7a2e01f9369e545681493fc58604b8d9f08"),
        W("train/2triples/2triples_Astronaut_train_challenge.xml", 43611, "c46d963888b96162737eef599cb509ec61ae7ac0b7576b50bb4a773c629a4f6c"),
        W("train/2triples/2triples_Building_train_challenge.xml", 160003, "29e2c3693ea085a0626689e5b216db97d22287e5c868232c3b7b73400e795b2a"),
        W("train/2triples/2triples_ComicsCharacter_train_challenge.xml", 70070, "504cd7686eed924c20886a1406d58c93cceed916c69eb110f32bd402445922a1"),
        W("train/2triples/2triples_Food_train_challenge.xml", 219973, "d167bd310b4c590f2fb89f5a3c060697417f96e55e48405bd373d82a0c2b53bf"),
        W("train/2triples/2triples_Monument_train_challenge.xml", 32332, "c72ce492b6175acee6323a561e462cc1728c5f4aa857c6d1613b113098fa842f"),
        W("train/2triples/2triples_SportsTeam_train_challenge.xml", 152212, "ad40cfe2b743b9553b72583bb080aa05d070f11e41229ac63586f6adfe08c2e4"),
        W("train/2triples/2triples_University_train_challenge.xml", 37188, "8636876bf0867d82c467d4156dc633947e93d4c4b7b0a11ac5a10f5e900b4c43"),
        W("train/2triples/2triples_WrittenWork_train_challenge.xml", 191317, "e33a3300735c0d5380a9ac30997ce918f2cda566974ba6ad2e9c69199fc495fe"),
        W("train/3triples/3triples_Airport_train_challenge.xml", 253351, "a159f60f29160d2a4639cd47a172c0fb279b437bf8927598d35fb10a8132fc94"),
        W("train/3triples/3triples_Astronaut_train_challenge.xml", 67402, "6c1259cbc54d28ee728ccb6ed11fb6209bef42875de4a1b7936832585e5cb5ae"),
        W("train/3triples/3triples_Building_train_challenge.xml", 243623, "f7365d94733f5c17488ba7f4d4ff81b603dc2abcf7d6a61e670e30998e19a30c"),
        W("train/3triples/3triples_ComicsCharacter_train_challenge.xml", 73546, "63d3b880e723f3a60c8d9523fbed1dd8baea87a05716fd0274d4c50dac35f0aa"),
        W("train/3triples/3triples_Food_train_challenge.xml", 320351, "d8845a3db25eca48502da20f828819d6dce20a2e6c6ca1fe390ea439c27145ac"),
        W("train/3triples/3triples_Monument_train_challenge.xml", 48842, "adadc1c4c592fd27fc78393d851729a5aca55b3db2b2390afe8485caa49a6f2f"),
        W("train/3triples/3triples_SportsTeam_train_challenge.xml", 197852, "f5ff678418c661a57c22b501a1cfb6f8f5d879b2737c680a4e0d7d5ab9c107ab"),
        W("train/3triples/3triples_University_train_challenge.xml", 69627, "b0dce6f94b1e35e9e08a7bc8738503112091fd95753cf7f0e7565361070a6363"),
        W("train/3triples/3triples_WrittenWork_train_challenge.xml", 309227, "98baedc0f596786f9980c6eca6f04426896d8101bd81b3968d63bf46d10eee07"),
        W("train/4triples/4triples_Airport_train_challenge.xml", 347196, "5d061dc0e38c1fc908b7857a07250bfda10658c48e8b9c18367f605f53580f12"),
        W("train/4triples/4triples_Astronaut_train_challenge.xml", 87793, "bc51f9a0eb205c7d51615bcc71d49d9e21b8cddb492085525acd5d15fa22f4a3"),
        W("train/4triples/4triples_Building_train_challenge.xml", 307688, "cc500953cdfe383540356056a2b5cf8460e30ee6c815f5689b33a403bb8694e8"),
        W("train/4triples/4triples_ComicsCharacter_train_challenge.xml", 48605, "607f553f3327d52f3200bb45c532ea14295b95c7f3ee263952e8f537e040164f"),
        W("train/4triples/4triples_Food_train_challenge.xml", 426045, "d09a516eb12f9e918b208128883a70490c9c00ae353bc93e332c3d8d13bc95a7"),
        W("train/4triples/4triples_Monument_train_challenge.xml", 72553, "8a101fbaac7064b86c6efa953a530737d14e8381a2747f2600cd640bbd33d9cb"),
        W("train/4triples/4triples_SportsTeam_train_challenge.xml", 203445, "c1c1870ab97402249405f3e754697d060fd9bb2fa0654d1fa06a7b50162ab4f8"),
        W("train/4triples/4triples_University_train_challenge.xml", 111624, "32ee738e706086f147947469017c928893672bf07d5fc9165b8cfb295e0df26c"),
        W("train/4triples/4triples_WrittenWork_train_challenge.xml", 272098, "e315ca9cab5fa17baee7290f6b5892ebd8785309891f0ddbaa9b516b2f3f0940"),
        W("train/5triples/5triples_Airport_train_challenge.xml", 389453, "d51ebfa7f1087395016c3d71810fcc9ba46a2ec0e7d4ad2218ce82ffc06f24c4"),
        W("train/5triples/5triples_Astronaut_train_challenge.xml", 122512, "9f7a4c0ff9b01532eb58982aec4d39c8432d8f1f301eb4b06c8cb93d988e573c"),
        W("train/5triples/5triples_Building_train_challenge.xml", 254574, "855549851647bd6f0bbf71ae39f09e3503178725e87fbfb5b71151634dc2d815"),
        W("train/5triples/5triples_ComicsCharacter_train_challenge.xml", 17061, "b8c0c8b07a57d11cd56eb15ff59c632391bf6a83c23f7a9510012bda9df3ec97"),
        W("train/5triples/5triples_Food_train_challenge.xml", 341810, "3b7928c106477ab087160a8c4cc6add30b3252110440c51f856e23fdd7b8952e"),
        W("train/5triples/5triples_Monument_train_challenge.xml", 78839, "326e5f85bc39c1e51a6e084702b8dc06b1a6e9664b11aeb174afcd253305c4cf"),
        W("train/5triples/5triples_SportsTeam_train_challenge.xml", 71976, "5ab12a09008403ba5260314be64a0f3d7a5c4e35ee34c80e4c2b3c225c250d21"),
        W("train/5triples/5triples_University_train_challenge.xml", 115612, "a60db97dcf6ba06b638c1b929c534a4fdf613eab0fe3cefbb73de090ccbaa423"),
        W("train/5triples/5triples_WrittenWork_train_challenge.xml", 160479, "93e6c1ebc54e9c72af6a12c3e222cd92376cec6cbf3ee3401f8d953ff2c0729b"),
        W("train/6triples/6triples_Astronaut_train_challenge.xml", 142751, "cd94f27fe3f279c8fca04add2d147084698c290c9cf1d5d4c31c1edc059c88b3"),
        W("train/6triples/6triples_Monument_train_challenge.xml", 73385, "9db9aa64374bf9edd2476f640b4b86ee75889c1291f6895d9b86154e1c46a649"),
        W("train/6triples/6triples_University_train_challenge.xml", 140917, "298ae9cde5b66c05f832b830c980b3e2b3e300e7547e1219af2e08b0b8d7812f"),
        W("train/7triples/7triples_Astronaut_train_challenge.xml", 166563, "278ef7856ebe368829788310717b87e9885be0eb0e4522b08018dff4054e6b6d"),
        W("train/7triples/7triples_Monument_train_challenge.xml", 61082, "6c6c45a02e3212dfeffe682d42eb1dda3d351a5161f01e6cb1f807edca02f9b6"),
        W("train/7triples/7triples_University_train_challenge.xml", 153698, "f859a37d51c42cbb1bdbbdd176b713e2ba2a563d14fdd7bfd2fb4f393f0392c0"),
    ];
}
