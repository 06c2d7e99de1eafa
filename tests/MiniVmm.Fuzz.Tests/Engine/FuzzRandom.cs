namespace MiniVmm.Fuzz.Tests.Engine;

/// <summary>
/// A small deterministic generator (SplitMix64): the same seed gives the same cases on every
/// .NET version, so a seed printed by one run replays on another machine.
/// </summary>
internal sealed class FuzzRandom(ulong seed)
{
    private ulong _state = seed;

    /// <summary>The seed of case <paramref name="caseNumber"/> of <paramref name="target"/> in the run seeded <paramref name="runSeed"/>.</summary>
    public static ulong CaseSeed(ulong runSeed, string target, long caseNumber)
    {
        ulong hash = 0xcbf29ce484222325;
        foreach (char c in target)
        {
            hash = (hash ^ c) * 0x100000001b3;
        }

        return Mix(runSeed ^ Mix(hash) ^ Mix((ulong)caseNumber + 0x9e3779b97f4a7c15));
    }

    public ulong NextU64()
    {
        _state += 0x9e3779b97f4a7c15;
        return Mix(_state);
    }

    /// <summary>A value in [0, <paramref name="bound"/>); 0 when the bound is 0.</summary>
    public int Next(int bound) => bound <= 0 ? 0 : (int)(NextU64() % (ulong)bound);

    /// <summary>A value in [<paramref name="low"/>, <paramref name="high"/>).</summary>
    public int Next(int low, int high) => low + Next(high - low);

    /// <summary>True with probability 1/<paramref name="n"/>.</summary>
    public bool OneIn(int n) => Next(n) == 0;

    public T Pick<T>(IReadOnlyList<T> items) => items[Next(items.Count)];

    public void Fill(Span<byte> bytes)
    {
        for (int i = 0; i < bytes.Length; i++)
        {
            bytes[i] = (byte)NextU64();
        }
    }

    private static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
        z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
        return z ^ (z >> 31);
    }
}
