using System.Buffers;

namespace MiniVmm.Vfio;

/// <summary>
/// A device's saving data, produced piece by piece for one saving data session. Every
/// <see cref="VfioSavingPiece.Initial"/> piece comes before any other piece. Called with the
/// session's lock held, from the session's producer thread and from PRECOPY_INFO queries.
/// </summary>
public interface IVfioSavingSource
{
    /// <summary>Initial bytes not produced yet.</summary>
    ulong PendingInitialBytes { get; }

    /// <summary>Dirty bytes not produced yet.</summary>
    ulong PendingDirtyBytes { get; }

    /// <summary>
    /// Appends the next piece to <paramref name="output"/> and says what it was. In precopy
    /// (<paramref name="stopCopy"/> false) <see cref="VfioSavingPiece.Nothing"/> means nothing more
    /// for now; in stop-copy it means the complete state has been produced.
    /// </summary>
    VfioSavingPiece ProduceNext(IBufferWriter<byte> output, bool stopCopy);
}
