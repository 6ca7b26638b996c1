import java.util.Map;
import java.util.concurrent.atomic.LongAdder;
import java.util.function.Consumer;

import de.bwaldvogel.mongo.backend.Index;
import de.bwaldvogel.mongo.backend.memory.MemoryBackend;
import de.bwaldvogel.mongo.bson.Document;
import io.netty.channel.Channel;

/**
 * The memory backend with {@link EscrowDatabase}s, an optional {@link Journal}, and a count of
 * the documents queries examined, reported by serverStatus as MongoDB does
 * ({@code metrics.queryExecutor.scannedObjects}) so tests can prove that a query used an index.
 */
final class EscrowBackend extends MemoryBackend {

    private final Journal journal;
    private final LongAdder examined = new LongAdder();

    EscrowBackend(Journal journal) {
        this.journal = journal;
    }

    @Override
    public EscrowDatabase openOrCreateDatabase(String name) {
        return new EscrowDatabase(name, getCursorRegistry(), this);
    }

    boolean isPersistent() {
        return journal != null;
    }

    void journal(Document record) {
        if (journal != null) {
            journal.append(record);
        }
    }

    void countExamined() {
        examined.increment();
    }

    /** Every command's reply waits until its writes are durable (group commit, see Journal). */
    @Override
    public Document handleCommand(Channel channel, String database, String command, Document query) {
        try {
            return super.handleCommand(channel, database, command, query);
        } finally {
            if (journal != null) {
                journal.awaitDurable();
            }
        }
    }

    @Override
    public Document getServerStatus() {
        Document status = super.getServerStatus();
        Document metrics = (Document) status.computeIfAbsent("metrics", k -> new Document());
        metrics.put("queryExecutor", new Document("scannedObjects", examined.sum()));
        status.put("escrowStorage", journal != null ? journal.status() : new Document("dataDir", null));
        return status;
    }

    /** Every user collection as journal records: created, its indexes, its documents. */
    void snapshot(Consumer<Document> out) {
        for (String name : listDatabaseNames()) {
            EscrowDatabase database = (EscrowDatabase) resolveDatabase(name);
            for (EscrowCollection collection : database.collections()) {
                String ns = collection.getFullName();
                out.accept(Journal.create(ns));
                for (Index<Integer> index : collection.getIndexes()) {
                    Document description = index.toIndexDescription();
                    if (!((Document) description.get("key")).keySet().equals(java.util.Set.of("_id"))) {
                        description.put("ns", ns);
                        out.accept(Journal.index(ns, description));
                    }
                }
                collection.snapshot(out);
            }
        }
    }

    /** Recreates the collections the data directory describes. */
    void restore(Journal.State state) {
        for (Map.Entry<String, Journal.State.Collection> entry : state.collections.entrySet()) {
            String ns = entry.getKey();
            int dot = ns.indexOf('.');
            EscrowDatabase database = (EscrowDatabase) resolveDatabase(ns.substring(0, dot));
            database.restore(ns.substring(dot + 1), entry.getValue().indexes.values(),
                entry.getValue().documents.values());
        }
    }
}
