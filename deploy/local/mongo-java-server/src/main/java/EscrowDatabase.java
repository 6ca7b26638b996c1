import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

import de.bwaldvogel.mongo.MongoCollection;
import de.bwaldvogel.mongo.MongoDatabase;
import de.bwaldvogel.mongo.backend.CollectionOptions;
import de.bwaldvogel.mongo.backend.CursorRegistry;
import de.bwaldvogel.mongo.backend.Index;
import de.bwaldvogel.mongo.backend.IndexKey;
import de.bwaldvogel.mongo.backend.memory.MemoryDatabase;
import de.bwaldvogel.mongo.bson.Document;
import de.bwaldvogel.mongo.exception.MongoServerError;
import de.bwaldvogel.mongo.oplog.Oplog;

/**
 * The memory backend's database with {@link EscrowCollection}s, non-unique indexes actually built
 * ({@link OrderedIndex}), and its collection and index changes written to the journal.
 */
final class EscrowDatabase extends MemoryDatabase {

    /** Null while the library's constructor opens the system collections (they are not journaled). */
    private final EscrowBackend backend;
    private final Map<String, EscrowCollection> collections = new ConcurrentHashMap<>();

    EscrowDatabase(String name, CursorRegistry cursors, EscrowBackend backend) {
        super(name, cursors);
        this.backend = backend;
    }

    EscrowBackend backend() {
        return backend;
    }

    void journal(Document record) {
        backend.journal(record);
    }

    private boolean isUserCollection(String name) {
        return !name.startsWith("system.");
    }

    @Override
    protected EscrowCollection openOrCreateCollection(String name, CollectionOptions options) {
        EscrowCollection collection = new EscrowCollection(this, name, options, cursorRegistry);
        if (isUserCollection(name) && backend != null) {
            collections.put(name, collection);
            journal(Journal.create(getFullCollectionNamespace(name)));
        }
        return collection;
    }

    @Override
    protected Index<Integer> openOrCreateSecondaryIndex(String collectionName, String indexName, List<IndexKey> keys,
                                                        boolean sparse) {
        if (sparse) {
            return super.openOrCreateSecondaryIndex(collectionName, indexName, keys, sparse);
        }
        return new OrderedIndex(indexName, keys);
    }

    @Override
    protected synchronized void addIndex(Document description) {
        super.addIndex(description);
        Document key = (Document) description.get("key");
        if (backend != null && key != null && !key.keySet().equals(java.util.Set.of("_id"))) {
            journal(Journal.index(description.get("ns").toString(), description));
        }
    }

    @Override
    protected void dropIndex(MongoCollection<Integer> collection, String indexName) {
        super.dropIndex(collection, indexName);
        if (isUserCollection(collection.getCollectionName())) {
            journal(Journal.dropIndex(collection.getFullName(), indexName));
        }
    }

    @Override
    public void dropCollection(String name, Oplog oplog) {
        super.dropCollection(name, oplog);
        if (isUserCollection(name)) {
            journal(Journal.drop(getFullCollectionNamespace(name)));
        }
    }

    @Override
    public void unregisterCollection(String name) {
        super.unregisterCollection(name);
        collections.remove(name);
    }

    @Override
    public void moveCollection(MongoDatabase oldDatabase, MongoCollection<?> collection, String newName) {
        if (backend.isPersistent()) {
            throw new MongoServerError(115, "CommandNotSupported",
                "renameCollection is not supported by EscrowMongoServer with a data directory");
        }
        super.moveCollection(oldDatabase, collection, newName);
    }

    /** The user collections, for a snapshot. */
    Collection<EscrowCollection> collections() {
        return new ArrayList<>(collections.values());
    }

    /** Recreates a collection from a snapshot and the journal: its indexes, then its documents. */
    void restore(String name, Collection<Document> indexes, Collection<Document> documents) {
        MongoCollection<Integer> collection = resolveOrCreateCollection(name);
        for (Document description : indexes) {
            Document copy = description.clone();
            copy.put("ns", getFullCollectionNamespace(name));
            addIndex(copy);
        }
        for (Document document : documents) {
            collection.addDocument(document);
        }
    }
}
