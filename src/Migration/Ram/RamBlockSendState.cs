namespace MiniVmm.Migration.Ram;

/// <summary>
/// What the RAM handler keeps per block while a migration sends it: the pages still to send,
/// the pages taken from that set since the last successful flush (in flight: if the transport
/// fails they are not known to have arrived), and the hole finder of the block's memfd.
/// </summary>
internal sealed class RamBlockSendState
{
    public RamBlockSendState(RamBlock block)
    {
        Block = block;
        Pending = new MigrationBitmap(block.PageCount);
        InFlight = new MigrationBitmap(block.PageCount);
        Extents = new RamBackingExtents(block);
    }

    public RamBlock Block { get; }

    public MigrationBitmap Pending { get; }

    public MigrationBitmap InFlight { get; }

    public RamBackingExtents Extents { get; }
}
