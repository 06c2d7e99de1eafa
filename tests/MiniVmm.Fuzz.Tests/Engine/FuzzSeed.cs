namespace MiniVmm.Fuzz.Tests.Engine;

/// <summary>
/// One input a real writer produced. <paramref name="HotSpots"/> are offsets where its structure
/// starts (section headers, frame headers): mutations land near them more often than elsewhere.
/// <paramref name="Trailer"/> is the offset of a migration stream's vmdesc trailer (0x06, be32
/// length, JSON to the end), whose numbers the mutator changes keeping the length right.
/// </summary>
internal sealed record FuzzSeed(string Name, byte[] Bytes, IReadOnlyList<int> HotSpots, int? Trailer = null)
{
    public FuzzSeed(string name, byte[] bytes)
        : this(name, bytes, [])
    {
    }

    public override string ToString() => $"{Name} ({Bytes.Length} bytes)";
}
