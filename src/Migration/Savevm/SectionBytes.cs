namespace MiniVmm.Migration.Savevm;

/// <summary>
/// Stream bytes by <see cref="SectionKind"/>: a section counts from its type byte through its
/// footer; bytes outside sections (header, configuration, commands, EOF, vmdesc) count as
/// <see cref="Other"/>, so <see cref="Total"/> is the whole stream. An immutable value.
/// </summary>
/// <param name="Ram">Bytes of <c>ram</c> sections.</param>
/// <param name="Vfio">Bytes of VFIO sections.</param>
/// <param name="Harness">Bytes of the guest harness's section.</param>
/// <param name="Other">Every other byte.</param>
public readonly record struct SectionBytes(long Ram, long Vfio, long Harness, long Other)
{
    /// <summary>Nothing counted.</summary>
    public static SectionBytes Zero => default;

    /// <summary>The sum of every kind.</summary>
    public long Total => Ram + Vfio + Harness + Other;

    /// <summary>The bytes of one kind.</summary>
    public long this[SectionKind kind] => kind switch
    {
        SectionKind.Ram => Ram,
        SectionKind.Vfio => Vfio,
        SectionKind.Harness => Harness,
        _ => Other,
    };

    /// <summary>What was counted between <paramref name="earlier"/> and <paramref name="later"/>.</summary>
    public static SectionBytes operator -(SectionBytes later, SectionBytes earlier) => new(
        later.Ram - earlier.Ram, later.Vfio - earlier.Vfio, later.Harness - earlier.Harness, later.Other - earlier.Other);
}

/// <summary>
/// Counts stream bytes by <see cref="SectionKind"/> as a <see cref="SaveStateWriter"/> writes or a
/// <see cref="SaveStateLoader"/> reads them, and tells an optional listener of every addition
/// (metrics). Added to by one thread at a time, read by any.
/// </summary>
public sealed class SectionByteCounts
{
    private readonly long[] _bytes = new long[SectionKindNames.All.Count];
    private readonly Action<SectionKind, long>? _added;

    /// <summary>Creates zeroed counts.</summary>
    /// <param name="added">Called with every positive addition, on the thread that adds.</param>
    public SectionByteCounts(Action<SectionKind, long>? added = null) => _added = added;

    /// <summary>Adds <paramref name="bytes"/> to <paramref name="kind"/>; nothing when it is not positive.</summary>
    public void Add(SectionKind kind, long bytes)
    {
        if (bytes <= 0)
        {
            return;
        }

        Interlocked.Add(ref _bytes[(int)kind], bytes);
        _added?.Invoke(kind, bytes);
    }

    /// <summary>The counts so far.</summary>
    public SectionBytes Snapshot() => new(
        Interlocked.Read(ref _bytes[(int)SectionKind.Ram]),
        Interlocked.Read(ref _bytes[(int)SectionKind.Vfio]),
        Interlocked.Read(ref _bytes[(int)SectionKind.Harness]),
        Interlocked.Read(ref _bytes[(int)SectionKind.Other]));
}
