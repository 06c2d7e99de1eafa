namespace MiniVmm.Fuzz.Tests.Engine;

/// <summary>
/// One input a real writer produced. <paramref name="HotSpots"/> are offsets where its structure
/// starts (section headers, frame headers): mutations land near them more often than elsewhere.
/// </summary>
internal sealed record FuzzSeed(string Name, byte[] Bytes, IReadOnlyList<int> HotSpots)
{
    public FuzzSeed(string name, byte[] bytes)
        : this(name, bytes, [])
    {
    }

    public override string ToString() => $"{Name} ({Bytes.Length} bytes)";
}
